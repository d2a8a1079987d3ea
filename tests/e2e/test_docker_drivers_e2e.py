"""Docker's built-in log drivers (gelf, fluentd, syslog, splunk) into a real ingest process.

A real dockerd runs busybox containers with `--log-driver …` pointed at the receivers; every line
each container printed must be in Postgres with the container's id, name, image and stream. The
`docker run` options here are the ones README.md gives users.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from tests.e2e.dockerd import Dockerd
from tests.e2e.logsite import Ingest, Row, Store

pytestmark = [pytest.mark.e2e, pytest.mark.django_db]

# What the hosts set with --log-opt tag= and the drivers with tag_template, so that syslog, splunk
# and fluentd (which carry no image) can name the container and its image.
TAG = "{{.ImageName}}/{{.Name}}/{{.ID}}"
# 40 KiB of hex: Docker splits it into 16 KiB messages, and gzip cannot squeeze one of them into a
# single GELF datagram, so the GELF case goes through chunking.
BIG = random.Random(40).randbytes(20 * 1024).hex()
SCRIPT = 'echo "$M-out-1"; echo "$M-err-1" >&2; echo; echo "$BIG"; echo "$M-err-2" >&2; echo "$M-out-2"'


@dataclass(frozen=True)
class Case:
    id: str
    driver: str  # Docker's --log-driver, and the key of the Logsite driver in the module's ingest
    opts: Callable[[Ingest], dict[str, str]]
    keeps_empty: bool = False  # gelf and syslog drop empty lines on Docker's side
    full_id: bool = False  # the message carries the 64-hex id (otherwise the tag's 12-hex {{.ID}})
    big_as: str = "pieces"  # one row per 16 KiB message; "fragments": marked attrs.partial; "whole"
    severities: bool = False  # level 6 for stdout and 3 for stderr
    # The container stays up until its lines are checked. Docker 20.10's fluentd client with
    # acks may read the other stream's ack and then reconnect and re-send for many seconds
    # (see FluentdReceiver); 10 s after a container exits dockerd closes its logger and drops
    # what is still unsent, which would fail the case on a loaded machine for Docker's sake.
    stays_up: bool = False


def _gelf(transport: str, **extra: str) -> Callable[[Ingest], dict[str, str]]:
    return lambda ingest: {"gelf-address": f"{transport}://127.0.0.1:{ingest.ports['gelf']}", **extra}


def _syslog(transport: str, fmt: str) -> Callable[[Ingest], dict[str, str]]:
    def opts(ingest: Ingest) -> dict[str, str]:
        found = {"syslog-address": f"{transport}://127.0.0.1:{ingest.ports['syslog']}", "tag": TAG}
        return found | ({"syslog-format": fmt} if fmt else {})

    return opts


def _fluentd(ack: bool) -> Callable[[Ingest], dict[str, str]]:
    def opts(ingest: Ingest) -> dict[str, str]:
        found = {"fluentd-address": f"tcp://127.0.0.1:{ingest.ports['fluentd']}", "tag": TAG}
        return found | ({"fluentd-request-ack": "true"} if ack else {})

    return opts


def _splunk(ingest: Ingest) -> dict[str, str]:
    return {
        "splunk-url": f"http://127.0.0.1:{ingest.ports['splunk']}",
        "splunk-token": ingest.tokens["splunk"],
        "tag": TAG,
    }


CASES = [
    Case("gelf-udp", "gelf", _gelf("udp"), full_id=True, severities=True),
    Case(
        "gelf-udp-zlib",
        "gelf",
        _gelf("udp", **{"gelf-compression-type": "zlib"}),
        full_id=True,
        severities=True,
    ),
    Case("gelf-tcp", "gelf", _gelf("tcp"), full_id=True, severities=True),
    Case(
        "fluentd-ack",
        "fluentd",
        _fluentd(ack=True),
        keeps_empty=True,
        full_id=True,
        big_as="fragments",
        stays_up=True,
    ),
    Case("fluentd-no-ack", "fluentd", _fluentd(ack=False), keeps_empty=True, full_id=True, big_as="whole"),
    *[
        Case(f"syslog-{transport}-{fmt or 'default'}", "syslog", _syslog(transport, fmt), severities=True)
        for transport in ("tcp", "udp")
        for fmt in ("", "rfc3164", "rfc5424", "rfc5424micro")
    ],
    Case("splunk", "splunk", _splunk, keeps_empty=True),
]


@pytest.fixture(scope="module")
def logsite(django_db_setup, django_db_blocker, tmp_path_factory) -> Ingest:
    with django_db_blocker.unblock():
        ingest = Ingest(tmp_path_factory.mktemp("docker-drivers"), "e2e-docker", writer="e2e-docker")
        try:
            ingest.add("gelf", "gelf")
            ingest.add("syslog", "syslog", tag_template=TAG)
            ingest.add("fluentd", "fluentd", tag_template=TAG)
            ingest.add("splunk", "splunk", tag_template=TAG)
            ingest.start()
        except BaseException:
            ingest.stop()
            raise
    yield ingest
    with django_db_blocker.unblock():
        ingest.stop()


def complete(case: Case, marker: str) -> Callable[[list[Row]], bool]:
    def done(rows: list[Row]) -> bool:
        out = [r.line for r in rows if r.stream == "stdout"]
        err = [r.line for r in rows if r.stream == "stderr"]
        big = sum(len(line) for line in out if not line.startswith(marker))
        empty_ok = not case.keeps_empty or "" in out
        return f"{marker}-out-2" in out and f"{marker}-err-2" in err and big >= len(BIG) and empty_ok

    return done


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_it_stores_every_line_a_container_printed(
    case: Case, logsite: Ingest, dockerd: Dockerd, busybox_image: str
):
    marker = f"m{uuid.uuid4().hex[:12]}"
    name = f"e2e-{case.id}-{marker[-6:]}"

    run = dockerd.run(
        busybox_image,
        "sh",
        "-c",
        SCRIPT + ("; exec sleep 600" if case.stays_up else ""),
        name=name,
        log_driver=case.driver,
        log_opts=case.opts(logsite),
        env={"M": marker, "BIG": BIG},
        detach=case.stays_up,
    )

    assert run.returncode == 0
    try:
        rows = Store().wait("c.name = %s", (name,), complete(case, marker))
    finally:
        if case.stays_up:
            dockerd.docker("rm", "--force", name, check=False)
    expected_id = run.container_id if case.full_id else run.container_id[:12]
    assert {(r.tenant, r.container_id, r.name, r.image) for r in rows} == {
        ("e2e-docker", expected_id, name, busybox_image)
    }
    assert [r.line for r in rows if r.stream == "stderr"] == [f"{marker}-err-1", f"{marker}-err-2"]
    out = [r for r in rows if r.stream == "stdout"]
    head = [f"{marker}-out-1"] + ([""] if case.keeps_empty else [])
    assert [r.line for r in out[: len(head)]] == head
    assert out[-1].line == f"{marker}-out-2"
    big = out[len(head) : -1]
    assert "".join(r.line for r in big) == BIG
    if case.big_as == "whole":
        assert len(big) == 1
    else:
        # Docker's copier hands drivers at most 16 KiB at a time.
        assert len(big) >= 3
        assert all(len(r.line) <= 16 * 1024 for r in big)
    if case.big_as == "fragments":
        # Acked fragments are stored as they come, marked so that they can be put together.
        marks = [r.attrs.pop("partial") for r in big]
        assert [m["ordinal"] for m in marks] == list(range(1, len(big) + 1))
        assert [m["last"] for m in marks] == [False] * (len(big) - 1) + [True]
        assert len({m["id"] for m in marks}) == 1
    assert not [r for r in rows if "partial" in r.attrs]
    if case.severities:
        assert {(r.stream, r.level) for r in rows} == {("stdout", 6), ("stderr", 3)}
    stats = logsite.stats(case.driver, lambda d: d.get("received", 0) > 0)
    assert stats["malformed"] == 0, stats
