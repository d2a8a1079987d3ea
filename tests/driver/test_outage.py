"""Logsite down, stuck or full: the container keeps writing and nothing is lost silently."""

import time

from driver.fifo import encode_frame
from driver.logentry import LogEntry


def frames(prefix: str, count: int, width: int = 0) -> tuple[list[str], bytes]:
    lines = [f"{prefix} {i:07d} {'.' * width}" for i in range(count)]
    data = b"".join(
        encode_frame(LogEntry(source="stdout", time_nano=i, line=x.encode())) for i, x in enumerate(lines)
    )
    return lines, data


def buffered_segments(plugin) -> int:
    return sum(len(list((d / "buffer").glob("*.ndjson"))) for d in plugin.streams())


def buffered_lines(plugin) -> int:
    """Lines on disk, from the segment names (<first seq>-<count>.ndjson)."""
    return sum(int(p.stem.split("-")[1]) for d in plugin.streams() for p in (d / "buffer").glob("*.ndjson"))


def test_it_buffers_on_disk_while_logsite_is_down_and_replays_in_order(logsite, plugin, container):
    logsite.stop()
    c = container({"batch-size": "16k", "batch-wait": "50ms"})
    c.start()
    lines, data = frames("outage", 5000)
    c.fifo.write(data)
    logsite.wait_for(lambda: buffered_segments(plugin) > 3, what="segments on disk")
    logsite.start()
    c.stop()
    c.fifo.close()
    logsite.wait_for(lambda: len(logsite.records) >= len(lines), what="the replay")
    assert logsite.lines() == lines
    assert [r["ts_ns"] for r in logsite.records] == list(range(5000))
    assert logsite.dropped_reported() == 0
    logsite.wait_for(lambda: plugin.streams() == [], what="the buffer to be removed")


def test_it_drops_the_oldest_when_the_buffer_is_full_and_reports_how_many(logsite, plugin, container):
    logsite.stop()
    c = container({"batch-size": "4k", "buffer-size": "64k", "batch-wait": "50ms"})
    c.start()
    lines, data = frames("full", 20000, width=40)  # ~1.3 MB against a 64 KiB buffer
    c.fifo.write(data)
    c.stop()
    c.fifo.close()
    logsite.wait_for(lambda: "dropped" in plugin.log(), what="the plugin to drop lines")
    logsite.start()
    logsite.wait_for(lambda: plugin.streams() == [], timeout=120, what="the stream to finish")
    got = logsite.lines()
    dropped = logsite.dropped_reported()
    assert 0 < len(got) < len(lines)
    assert len(got) + dropped == len(lines)
    # The newest lines survive, still in order: what arrived is the tail of what was written.
    assert got == lines[-len(got) :]
    report = next(r for r in logsite.records if "logsite_dropped" in r.get("attrs", {}))
    assert report["container_id"] == c.id
    assert report["stream"] == "stderr"
    assert "buffer was full" in report["line"]


def test_the_container_never_blocks_while_logsite_accepts_but_never_answers(logsite, plugin, container):
    logsite.hang = True  # Loki's plugin hangs containers in exactly this situation
    c = container({"batch-size": "64k", "buffer-size": "2m", "batch-wait": "50ms"})
    c.start()
    total = 0
    for part in range(10):
        lines, data = frames(f"burst{part}", 20000, width=60)
        c.fifo.write(data, deadline_s=120)  # raises WriterBlocked if the pipe stays full
        total += len(lines)
    assert total == 200000
    logsite.wait_for(lambda: "dropped" in plugin.log(), what="drops once the 2 MiB buffer filled")


def test_the_container_never_blocks_while_logsite_refuses_connections(logsite, plugin, container):
    logsite.stop()
    c = container({"batch-size": "64k", "buffer-size": "1m", "batch-wait": "50ms"})
    c.start()
    _, data = frames("refused", 100000, width=60)
    c.fifo.write(data, deadline_s=120)
    c.stop()
    c.fifo.close()


def test_it_keeps_retrying_through_server_errors(logsite, container):
    logsite.status = 503
    c = container({"batch-wait": "50ms"})
    c.start()
    c.fifo.entry(b"patience")
    time.sleep(1.5)  # several refused attempts
    assert logsite.records == []
    logsite.status = None
    c.stop()
    c.fifo.close()
    logsite.wait_for(lambda: logsite.lines() == ["patience"], what="the retried line")


def test_it_drops_only_the_records_logsite_refuses_for_good(logsite, plugin, container):
    logsite.poison = "poison"
    c = container({"batch-wait": "300ms"})
    c.start()
    for x in (b"a", b"b", b"poison", b"c", b"d"):
        c.fifo.entry(x)
    c.stop()
    c.fifo.close()
    logsite.wait_for(lambda: plugin.streams() == [], what="the stream to finish")
    assert logsite.lines() == ["a", "b", "c", "d"]
    assert "Logsite refused a record (HTTP 400)" in plugin.log()


def test_it_holds_lines_while_logsite_refuses_the_token(logsite, plugin, container):
    right = logsite.token
    logsite.token = "rotated"
    c = container({"batch-wait": "50ms"})
    c.start()
    c.fifo.entry(b"held while the token is refused")
    logsite.wait_for(lambda: "HTTP 401" in plugin.log(), what="a refused push")
    logsite.token = right
    logsite.wait_for(lambda: len(logsite.records) == 1, what="delivery once the token matches")


def test_it_resumes_buffered_lines_after_a_plugin_restart(logsite, plugin, container):
    logsite.stop()
    c = container({"batch-wait": "50ms"})
    c.start()
    first, data = frames("before-restart", 3000)
    c.fifo.write(data)
    logsite.wait_for(lambda: buffered_lines(plugin) == len(first), what="every line on disk")
    plugin.stop()
    # dockerd keeps its FIFO open; the restarted plugin must find it again by itself.
    plugin.start()
    assert "re-attached" in plugin.log()
    logsite.start()
    second = [f"after-restart {i}" for i in range(100)]
    for i, x in enumerate(second):
        c.fifo.entry(x.encode(), time_nano=10_000 + i)
    c.stop()
    c.fifo.close()
    logsite.wait_for(lambda: len(logsite.records) >= len(first) + len(second), what="all lines")
    assert logsite.lines() == first + second


def test_it_delivers_a_buffer_whose_fifo_vanished_while_the_plugin_was_down(logsite, plugin, container):
    logsite.stop()
    c = container({"batch-wait": "50ms"})
    c.start()
    lines, data = frames("orphan", 2000)
    c.fifo.write(data)
    logsite.wait_for(lambda: buffered_lines(plugin) == len(lines), what="every line on disk")
    plugin.stop()
    c.fifo.close()  # the container stopped and dockerd removed its FIFO meanwhile
    plugin.start()
    assert "FIFO gone; delivering" in plugin.log()
    logsite.start()
    logsite.wait_for(lambda: plugin.streams() == [], what="the orphaned buffer to drain")
    assert logsite.lines() == lines
