"""The /store API over LangGraph's BaseStore (`service.py`); its requests are parsed in src/web/requests/store.py."""
