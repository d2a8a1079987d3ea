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


def _gelf(driver: DriverConfig, pipeline) -> Receiver:
    from ingest.receivers.gelf import GelfReceiver

    return GelfReceiver(driver, pipeline)


def _syslog(driver: DriverConfig, pipeline) -> Receiver:
    from ingest.receivers.syslog import SyslogReceiver

    return SyslogReceiver(driver, pipeline)


def _fluentd(driver: DriverConfig, pipeline) -> Receiver:
    from ingest.receivers.fluentd import FluentdReceiver

    return FluentdReceiver(driver, pipeline, max_line_bytes=settings.LOGSITE_MAX_LINE_BYTES)


def _splunk(driver: DriverConfig, pipeline) -> Receiver:
    from ingest.receivers.splunk import SplunkReceiver

    return SplunkReceiver(driver, pipeline, settings.LOGSITE_MAX_BODY_BYTES)


def _journal(driver: DriverConfig, pipeline) -> Receiver:
    from ingest.receivers.journal import JournalReceiver

    return JournalReceiver(
        driver, pipeline, settings.LOGSITE_MAX_BODY_BYTES, max_line_bytes=settings.LOGSITE_MAX_LINE_BYTES
    )


FACTORIES: dict[str, Callable[[DriverConfig, object], Receiver]] = {
    "zmq": _zmq,
    "http": _http,
    # The Logsite Docker plugin speaks HTTP push (driver/sender.py).
    "plugin": _http,
    "gelf": _gelf,
    "syslog": _syslog,
    "fluentd": _fluentd,
    "splunk": _splunk,
    "journal": _journal,
}


def build_receiver(driver: DriverConfig, pipeline) -> Receiver:
    try:
        factory = FACTORIES[driver.kind]
    except KeyError:
        raise ValueError(f"no receiver for driver kind {driver.kind!r}") from None
    return factory(driver, pipeline)
