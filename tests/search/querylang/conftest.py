import pytest
from django.conf import settings
from django.db import connection

from tests.search.querylang import dataset as ds


def _require_test_database():
    # pytest-django creates the test database only when some collected test carries the
    # django_db mark; without one these module fixtures would run on the real database.
    expected = settings.DATABASES["default"]["TEST"]["NAME"]
    if connection.settings_dict["NAME"] != expected:
        pytest.fail(f"refusing to touch database {connection.settings_dict['NAME']!r}; expected {expected!r}")


@pytest.fixture(scope="module")
def dataset(django_db_setup, django_db_blocker):
    """Rows committed once per module (hypothesis runs many examples over them); the database
    stays unblocked while the module's tests run and everything is removed afterwards."""
    with django_db_blocker.unblock():
        _require_test_database()
        ds.remove()  # leftovers of an interrupted run
        try:
            yield ds.build()
        finally:
            ds.remove()


@pytest.fixture(scope="module")
def pg(django_db_setup, django_db_blocker):
    """A cursor on the test database for tests that only evaluate expressions (no tables)."""
    with django_db_blocker.unblock():
        _require_test_database()
        with connection.cursor() as cursor:
            yield cursor
