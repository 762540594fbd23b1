"""Auth: LangGraph's `langgraph_sdk.Auth` objects run by this server.

`module.py` loads a user's Auth object (`auth.path`) and calls it: `authenticate` on every
request, the most specific `@auth.on` handler per resource and action. `filters.py` turns
what a handler returns into a `Visibility`, which repositories apply in their queries
(`sql.py` holds the one SQL condition for it). `builtin.py` is the ready-made Auth object
(API keys, bearer JWTs, owner-scoped records), configured by settings (`settings.py`).
The web layer (`src/web/auth.py`) decides what each route asks of the module.
"""
