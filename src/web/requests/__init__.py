"""Request parsing: each route's JSON body and query parameters checked and turned into the typed
arguments its service method takes. A bad field is an `InvalidRequest` (422) naming it."""
