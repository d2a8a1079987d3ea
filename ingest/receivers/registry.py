"""Driver kind -> receiver factory, so one ingest process can run any mix of drivers.

To add a receiver: write ingest/receivers/<kind>.py with a Receiver subclass, register its
factory here, add the kind to Driver.Kind, and add tests/ingest/test_receiver_<kind>.py
(checklist in docs/adding-a-receiver.md).
"""

from collections.abc import Callable

from django.conf import settings

from ingest.receivers.base import DriverConfig, Receiver


def _zmq(driver: DriverConfig, pipeline) -> Receiver:
    from ingest.receivers.zmq import ZmqReceiver

    return ZmqReceiver(driver, pipeline)


def _http(driver: DriverConfig, pipeline) -> Receiver:
    from ingest.receivers.http_push import HttpPushReceiver

    return HttpPushReceiver(driver, pipeline, settings.LOGSITE_MAX_BODY_BYTES)


FACTORIES: dict[str, Callable[[DriverConfig, object], Receiver]] = {
    "zmq": _zmq,
    "http": _http,
    # The Logsite Docker plugin speaks HTTP push (driver/sender.py).
    "plugin": _http,
}


def build_receiver(driver: DriverConfig, pipeline) -> Receiver:
    try:
        factory = FACTORIES[driver.kind]
    except KeyError:
        raise ValueError(f"no receiver for driver kind {driver.kind!r}") from None
    return factory(driver, pipeline)
