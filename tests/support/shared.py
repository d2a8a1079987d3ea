"""One real ingest process shared by every test of a module (its start costs seconds).

A module that uses it must not use transactional_db/`django_db(transaction=True)`: that flush
after each test would delete the drivers the shared process serves. Tests read the database
directly (module_db unblocks it) and keep apart by using their own container ids.
"""

import uuid

import pytest
from django.core.management import call_command
from django.db import connection


def empty_store() -> None:
    """What a transactional test's flush does, plus the tables Django does not manage."""
    call_command("flush", interactive=False, verbosity=0)
    with connection.cursor() as cur:
        cur.execute("TRUNCATE logs, log_batches, containers CASCADE")


@pytest.fixture(scope="module")
def module_db(django_db_setup, django_db_blocker):
    with django_db_blocker.unblock():
        empty_store()
        yield
        empty_store()


def unique(prefix: str = "c") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"
