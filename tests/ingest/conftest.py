from tests.support.celery_worker import celery_worker  # noqa: F401 - shared fixture
