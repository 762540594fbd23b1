"""Threads: their records and SQL (`sql.py`, `repository.py`) and the /threads service (`service.py`)."""
