"""`manage.py run`: every Logsite process, and its own Postgres and Redis when none are configured,
under one supervisor. The operator's view is in docs/running.md.
"""


class RunError(Exception):
    """Start-up cannot go on; the message says why and what to do."""
