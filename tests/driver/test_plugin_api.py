"""The plugin as dockerd sees it: HTTP on its unix socket, frames into a real FIFO."""

import struct

from driver.logentry import LogEntry, PartialLogEntryMetadata
from tests.driver.dockerd_peer import info, request
from tests.driver.dockerd_split import FRAGMENT


def test_it_answers_capabilities_with_the_cap_wrapper(plugin):
    resp = request(plugin.socket, "LogDriver.Capabilities")
    assert resp.status == 200
    assert resp.read() == b'{"Cap": {"ReadLogs": true}, "Err": ""}'


def test_it_answers_activate_with_log_driver(plugin):
    assert plugin.call("Plugin.Activate") == (200, {"Implements": ["LogDriver"]})


def test_it_refuses_an_unknown_option_so_the_container_does_not_start(plugin, container):
    c = container({"logsite-url": "http://127.0.0.1:9", "colour": "blue"})
    answer = c.start()
    assert "unknown log-opt colour" in answer["Err"]
    assert plugin.streams() == []


def test_it_refuses_an_invalid_option_value(plugin, container):
    answer = container({"buffer-size": "a lot"}).start()
    assert "buffer-size must be a size" in answer["Err"]


def test_it_refuses_a_start_without_container_id(plugin, container):
    c = container()
    del c.info["ContainerID"]
    assert "ContainerID" in c.start()["Err"]


def test_it_refuses_a_file_that_is_not_a_fifo(plugin, tmp_path):
    plain = tmp_path / "plain"
    plain.write_bytes(b"")
    status, answer = plugin.call("LogDriver.StartLogging", {"File": str(plain), "Info": info()})
    assert status == 200
    assert "not a FIFO" in answer["Err"]


def test_it_accepts_the_options_dockerd_itself_passes(container):
    opts = {"mode": "non-blocking", "max-buffer-size": "4m", "tag": "{{.Name}}", "cache-disabled": "true"}
    assert container(opts).start() == {"Err": ""}


def test_it_ships_lines_with_their_own_time_and_the_container_metadata(logsite, container):
    c = container(
        {"labels": "team", "env": "REGION", "tag": "{{.Name}}/{{.ID}}"},
        ContainerEnv=["TENANT_ID=acme", "SERVICE_ID=web", "REGION=eu", "SECRET=hunter2"],
        ContainerLabels={"team": "payments", "internal": "x"},
    )
    assert c.start() == {"Err": ""}
    c.fifo.entry(b"hello", time_nano=1_700_000_000_123_456_789)
    c.fifo.entry(b"oops\r", time_nano=1_700_000_000_223_456_789, source="stderr")
    c.fifo.entry(b"", time_nano=1_700_000_000_323_456_789)
    c.fifo.entry(b"bad \xff\xfe utf8 \x00 nul", time_nano=1_700_000_000_423_456_789)
    c.stop()
    c.fifo.close()
    logsite.wait_for(lambda: len(logsite.records) == 4, what="4 records")
    first, second, empty, bad = logsite.records
    assert first == {
        "container_id": c.id,
        "container_name": "web-1",
        "image": "busybox:latest",
        "host": "node-1",
        "service": "web",
        "tenant": "acme",
        "labels": {"team": "payments"},
        "line": "hello",
        "ts_ns": 1_700_000_000_123_456_789,
        "stream": "stdout",
        "attrs": {"tag": f"web-1/{c.id[:12]}", "env": {"REGION": "eu"}},
        "_id": 1,
    }
    assert (second["line"], second["stream"]) == ("oops\r", "stderr")
    assert empty["line"] == ""
    assert bad["line"] == "bad \ufffd\ufffd utf8 \x00 nul"


def test_it_joins_fragments_including_an_empty_last_one(logsite, container):
    c = container()
    c.start()
    exact = b"e" * (2 * FRAGMENT)
    longer = b"l" * (FRAGMENT * 3 + 123)
    c.fifo.entry(exact, time_nano=10)
    c.fifo.entry(b"between", time_nano=20, source="stderr")
    c.fifo.entry(longer, time_nano=30)
    c.stop()
    c.fifo.close()
    logsite.wait_for(lambda: len(logsite.records) == 3, what="3 records")
    got = [(r["line"], r["ts_ns"], r["stream"]) for r in logsite.records]
    assert got == [(exact.decode(), 10, "stdout"), ("between", 20, "stderr"), (longer.decode(), 30, "stdout")]
    assert all("attrs" not in r for r in logsite.records)


def test_it_ships_a_group_whose_last_fragment_never_comes(logsite, container):
    c = container({"partial-timeout": "300ms", "batch-wait": "50ms"})
    c.start()
    meta = PartialLogEntryMetadata(id="g" * 64, ordinal=1, last=False)
    c.fifo.write(
        _frame(
            LogEntry(
                source="stdout", time_nano=5, line=b"x" * FRAGMENT, partial=True, partial_log_metadata=meta
            )
        )
    )
    # The FIFO stays open: only the timeout can release this line.
    logsite.wait_for(lambda: len(logsite.records) == 1, what="the timed-out group")
    (record,) = logsite.records
    assert record["line"] == "x" * FRAGMENT
    assert record["ts_ns"] == 5
    assert record["attrs"] == {"partial_incomplete": True}
    c.fifo.entry(b"after", time_nano=6)
    logsite.wait_for(lambda: len(logsite.records) == 2, what="the next line")


def test_it_ships_a_group_cut_by_eof_when_the_container_exits_mid_line(logsite, container):
    c = container()
    c.start()
    meta = PartialLogEntryMetadata(id="h" * 64, ordinal=1, last=False)
    c.fifo.write(
        _frame(
            LogEntry(
                source="stdout", time_nano=5, line=b"tail-no-newline", partial=True, partial_log_metadata=meta
            )
        )
    )
    c.stop()
    c.fifo.close()
    logsite.wait_for(lambda: len(logsite.records) == 1, what="the EOF-flushed group")
    assert logsite.records[0]["line"] == "tail-no-newline"


def test_it_drains_the_fifo_to_eof_after_answering_stop_logging(logsite, container, plugin):
    c = container()
    c.start()
    before = [f"before {i:06d}".encode() for i in range(20000)]
    c.fifo.write(
        b"".join(_frame(LogEntry(source="stdout", time_nano=i, line=x)) for i, x in enumerate(before))
    )
    c.stop()
    # dockerd's copier may still hold lines when it calls StopLogging; they reach the pipe
    # after the answer, before dockerd closes its end.
    after = [f"after {i:06d}".encode() for i in range(500)]
    c.fifo.write(
        b"".join(_frame(LogEntry(source="stdout", time_nano=i, line=x)) for i, x in enumerate(after))
    )
    c.fifo.close()
    expected = [x.decode() for x in before + after]
    logsite.wait_for(lambda: len(logsite.records) >= len(expected), what="every line")
    assert logsite.lines() == expected
    # Once everything is delivered, the stream and its buffer directory are gone.
    logsite.wait_for(lambda: plugin.streams() == [], what="the stream directory to go")


def test_it_applies_the_template_and_the_filter(logsite, container):
    c = container({"template": "[{container_name}] {log}", "filter-regex": "^keep"})
    c.start()
    for x in (b"keep 1", b"drop 2", b"keep 3"):
        c.fifo.entry(x)
    c.stop()
    c.fifo.close()
    logsite.wait_for(lambda: len(logsite.records) == 2, what="filtered records")
    assert logsite.lines() == ["[web-1] keep 1", "[web-1] keep 3"]


def test_it_skips_undecodable_records_and_keeps_draining_after_a_corrupt_length(logsite, container, plugin):
    c = container()
    c.start()
    c.fifo.entry(b"one")
    c.fifo.write(struct.pack(">I", 3) + b"\xff\xff\xff")
    c.fifo.entry(b"two")
    logsite.wait_for(lambda: len(logsite.records) == 2, what="records around a bad one")
    c.fifo.write(struct.pack(">I", 50_000_000))
    # Nothing after a broken length can be trusted, but the pipe must keep emptying.
    c.fifo.write(b"\x00" * 2_000_000)
    c.stop()
    c.fifo.close()
    assert logsite.lines() == ["one", "two"]
    assert "stream is corrupt" in plugin.log()
    healthy = container()
    healthy.start()
    healthy.fifo.entry(b"three")
    logsite.wait_for(lambda: len(logsite.records) == 3, what="a later container")


def _frame(entry: LogEntry) -> bytes:
    body = entry.SerializeToString()
    return struct.pack(">I", len(body)) + body


def test_it_keeps_only_the_env_it_uses_in_its_state_on_disk(plugin, container):
    c = container({"env": "REGION"}, ContainerEnv=["TENANT_ID=acme", "REGION=eu", "DB_PASSWORD=hunter2"])
    assert c.start() == {"Err": ""}
    (directory,) = plugin.streams()
    saved = (directory / "start.json").read_text()
    assert "hunter2" not in saved
    assert "TENANT_ID=acme" in saved
    assert "REGION=eu" in saved
    assert (directory / "start.json").stat().st_mode & 0o077 == 0
