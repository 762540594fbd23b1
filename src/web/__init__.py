"""The HTTP layer: the Robyn app and the server entry point."""
