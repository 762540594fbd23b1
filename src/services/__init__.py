"""The agent, persistence and the services the web layer calls."""
