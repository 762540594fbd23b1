"""A small LangGraph project laid out as a package, as `langgraph new` makes them."""
