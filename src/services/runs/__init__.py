"""Runs: a run's request (`request.py`), its record and SQL (`repository.py`, `sql.py`), its event
stream (`streams.py`, `follower.py`), the per-thread turn (`turns.py`), its execution (`executor.py`)
and the service that creates, follows and cancels runs (`service.py`)."""
