"""Tell running ingest processes that drivers or multi-line rules changed, so they apply it
without a restart.

Best effort: ingest also re-reads drivers every LOGSITE_DRIVER_POLL_SECONDS, so a lost
notification only delays the change.
"""

import logging

import redis
from django.conf import settings
from django.db import transaction

log = logging.getLogger(__name__)

DRIVERS_CHANGED_CHANNEL = "logsite:drivers-changed"


def _publish() -> None:
    try:
        redis.Redis.from_url(settings.REDIS_URL, socket_timeout=2).publish(DRIVERS_CHANGED_CHANNEL, b"1")
    except redis.RedisError as e:
        log.warning("could not notify ingest of a driver change (it will poll): %s", e)


def drivers_changed(**_kwargs) -> None:
    # After commit: ingest must read the new configuration, not the one being replaced.
    transaction.on_commit(_publish)
