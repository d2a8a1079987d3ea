import json
import subprocess
import time

import pytest

from accounts.models import ApiToken
from ingest.record import Record
from tests.support.processes import REPO
from tests.support.store import store_records

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.e2e]


def cli(url, token, *args):
    return subprocess.run(
        [str(REPO / "bin" / "logsite"), "search", *args, "--url", url, "--token", token],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_it_prints_exports_and_explains_errors(actors, clean_logs, server):
    url, _ = server
    now = time.time_ns()
    store_records(
        [
            Record(line=f"req {i}", ts_ns=now - (100 - i) * 10**9, tenant="tenant-a", container_name="api")
            for i in range(100)
        ]
    )
    _, token = ApiToken.issue(actors.alice, "cli")
    text = cli(url, token, "req", "--limit", "3")
    assert text.returncode == 0, text.stderr
    assert [line.rsplit(": ", 1)[1] for line in text.stdout.splitlines()] == ["req 97", "req 98", "req 99"]

    exported = cli(url, token, "container:api", "--since", "1h", "--output", "ndjson")
    assert exported.returncode == 0, exported.stderr
    assert [json.loads(x)["line"] for x in exported.stdout.splitlines()] == [f"req {i}" for i in range(100)]
    assert "100 lines" in exported.stderr

    bad = cli(url, token, "level>=loud")
    assert bad.returncode == 1
    assert "position" in bad.stderr
    assert cli(url, "lsu_wrong", "req").returncode == 1
