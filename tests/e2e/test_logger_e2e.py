"""util-linux `logger` into the syslog receiver of a real ingest process: RFC 5424 and RFC 3164
over UDP, TCP with newline framing and TCP with octet counting (RFC 6587)."""

from __future__ import annotations

import shutil
import socket
import subprocess
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from tests.e2e.logsite import Ingest, Row, Store

pytestmark = [pytest.mark.e2e, pytest.mark.django_db]

TRANSPORTS = {"udp": ["--udp"], "tcp": ["--tcp"], "octet-count": ["--tcp", "--octet-count"]}
BIG = "0123456789abcdef" * 2560  # 40 KiB: logger needs --size for it (its default is 1 KiB)


@pytest.fixture(scope="module")
def logsite(django_db_setup, django_db_blocker, tmp_path_factory) -> Ingest:
    if shutil.which("logger") is None:
        raise RuntimeError("logger not found: run scripts/install-system-packages (util-linux)")
    with django_db_blocker.unblock():
        ingest = Ingest(tmp_path_factory.mktemp("logger"), "e2e-logger", writer="e2e-logger")
        try:
            ingest.add("syslog", "syslog")
            ingest.start()
        except BaseException:
            ingest.stop()
            raise
    yield ingest
    with django_db_blocker.unblock():
        ingest.stop()


def logger(port: int, transport: str, fmt: str, tag: str, *args: str, stdin: bytes | None = None) -> None:
    argv = ["logger", "--server", "127.0.0.1", "--port", str(port), *TRANSPORTS[transport], f"--{fmt}"]
    argv += ["--tag", tag, "--size", "65536", *args]
    subprocess.run(argv, input=stdin, check=True, capture_output=True, timeout=60)


@pytest.mark.parametrize("fmt", ["rfc5424", "rfc3164"])
@pytest.mark.parametrize("transport", list(TRANSPORTS))
def test_it_stores_what_logger_sends(logsite: Ingest, transport: str, fmt: str):
    port = logsite.ports["syslog"]
    tag = f"e2e-{uuid.uuid4().hex[:10]}"
    before = datetime.now(UTC)

    # With no message argument logger sends each line of stdin, an empty one too (unless -e).
    logger(port, transport, fmt, tag, "--priority", "local3.info", stdin=b"first\n\nthird\n")
    logger(port, transport, fmt, tag, "--priority", "user.err", "--id=4242", "an error")
    logger(port, transport, fmt, tag, "--priority", "daemon.warning", BIG)
    multi = transport == "octet-count"
    if multi:  # only a counted frame can carry a newline
        logger(port, transport, fmt, tag, "--priority", "local3.notice", "two\nlines")
    if fmt == "rfc5424":
        sd = ["--sd-id", "zoo@32473", "--sd-param", 'tiger="hungry"', "--msgid", "FEED"]
        logger(port, transport, fmt, tag, "--priority", "local0.debug", *sd, "structured")
    after = datetime.now(UTC)

    expected = ["first", "", "third", "an error", BIG] + (["two\nlines"] if multi else [])
    expected += ["structured"] if fmt == "rfc5424" else []
    rows = Store().wait("l.attrs->>'app' = %s", (tag,), lambda rows: len(rows) >= len(expected))
    assert sorted(r.line for r in rows) == sorted(expected)
    by_line: dict[str, Row] = {r.line: r for r in rows}
    host = socket.gethostname()
    assert {(r.tenant, r.container_id, r.host, r.name) for r in rows} == {("e2e-logger", host, host, "")}
    levels = {line: (r.level, r.stream, r.attrs["facility"]) for line, r in by_line.items()}
    assert levels["first"] == levels[""] == levels["third"] == (6, "stdout", 19)
    assert levels["an error"] == (3, "stderr", 1)
    assert levels[BIG] == (4, "stdout", 3)
    assert by_line["an error"].attrs["procid"] == "4242"
    if multi:
        assert levels["two\nlines"] == (5, "stdout", 19)
    if fmt == "rfc5424":
        structured = by_line["structured"]
        assert (structured.level, structured.attrs["facility"], structured.attrs["msgid"]) == (7, 16, "FEED")
        assert structured.attrs["sd"]["zoo@32473"] == {"tiger": "hungry"}
        assert structured.attrs["sd"]["timeQuality"]["tzKnown"] == "1"
    # RFC 5424 carries logger's own clock (µs); an RFC 3164 stamp has no year or zone, so the
    # receive time stands in. Either way it is the time of this test, not something parsed wrong.
    slack = timedelta(seconds=5)
    assert all(before - slack <= r.ts <= after + slack for r in rows), [r.ts for r in rows]
    stats = logsite.stats("syslog", lambda d: d.get("received", 0) > 0)
    assert stats["malformed"] == 0, stats
