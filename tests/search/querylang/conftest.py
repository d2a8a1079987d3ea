import pytest

from tests.search.querylang import dataset as ds


@pytest.fixture(scope="module")
def dataset(django_db_setup, django_db_blocker):
    """Rows committed once per module (hypothesis runs many examples over them); the database
    stays unblocked while the module's tests run and everything is dropped afterwards."""
    with django_db_blocker.unblock():
        created = ds.ensure_ingest_tables()
        ds.drop_logs_table()
        ds.create_logs_table()
        try:
            yield ds.build()
        finally:
            ds.remove(created)


@pytest.fixture(scope="module")
def pg(django_db_setup, django_db_blocker):
    """A cursor on the test database for tests that only evaluate expressions (no tables)."""
    from django.db import connection

    with django_db_blocker.unblock(), connection.cursor() as cursor:
        yield cursor
