"""Assistants: records and SQL (`sql.py`, `repository.py`), graph schemas (`schemas.py`), the service."""
