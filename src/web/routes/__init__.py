"""HTTP routes, one module per part of the LangGraph API; each has `register(app, container)`."""
