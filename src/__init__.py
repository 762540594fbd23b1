"""agent-server: a self-hosted LangGraph agent server on Robyn and Postgres."""

__version__ = "0.1.0"
