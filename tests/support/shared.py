"""One real ingest process shared by every test of a module (its start costs seconds).

A module that uses it marks its tests `django_db` (plain, rolled-back transactions) and never
`transaction=True`: that flush after each test would delete the drivers the shared process
serves. The mark also makes pytest-django create the test database when only such tests are
selected. Tests keep apart by using their own container ids.
"""

import uuid

import pytest
import redis
from django.conf import settings
from django.core.management import call_command
from django.db import connection


def empty_store() -> None:
    """What a transactional test's flush does, plus what Django does not manage (as clean_logs)."""
    call_command("flush", interactive=False, verbosity=0)
    with connection.cursor() as cur:
        cur.execute("TRUNCATE logs, log_batches, containers CASCADE")
    client = redis.Redis.from_url(settings.REDIS_URL)
    for key in [*client.scan_iter(match="logsite:rates:*"), "logsite:seen"]:
        client.delete(key)
    client.close()


@pytest.fixture(scope="module")
def module_db(django_db_setup, django_db_blocker):
    with django_db_blocker.unblock():
        empty_store()
        yield
        empty_store()


def unique(prefix: str = "c") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"
