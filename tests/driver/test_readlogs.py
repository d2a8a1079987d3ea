"""`docker logs` through the plugin: ReadLogs answered from Logsite in FIFO framing."""

from driver.timefmt import format_rfc3339_ns
from tests.driver.dockerd_peer import read_frames, request
from tests.driver.dockerd_split import FRAGMENT

ZERO = "0001-01-01T00:00:00Z"
SECOND = 1_000_000_000
T0 = 1_700_000_000 * SECOND


def read_config(tail=-1, since=ZERO, until=ZERO, follow=False):
    return {"Since": since, "Until": until, "Tail": tail, "Follow": follow}


def logged(logsite, container, lines):
    """A container that logged `lines` (one per second from T0) and has stopped."""
    c = container()
    c.start()
    for i, line in enumerate(lines):
        c.fifo.entry(line.encode(), time_nano=T0 + i * SECOND, source="stderr" if i % 2 else "stdout")
    c.stop()
    c.fifo.close()
    logsite.wait_for(lambda: len(logsite.lines(c.id)) == len(lines), what="the logged lines")
    return c


def docker_logs(plugin, c, **cfg):
    resp = request(plugin.socket, "LogDriver.ReadLogs", {"Info": c.info, "Config": read_config(**cfg)})
    assert resp.status == 200, resp.read()
    return resp


def test_it_answers_tail_since_and_until(plugin, logsite, container):
    lines = [f"line {i}" for i in range(10)]
    c = logged(logsite, container, lines)

    entries = read_frames(docker_logs(plugin, c, tail=3))
    # Each line ends in a newline: `docker logs` prints `line` exactly as it comes back.
    assert [(e.line, e.time_nano, e.source) for e in entries] == [
        (b"line 7\n", T0 + 7 * SECOND, "stderr"),
        (b"line 8\n", T0 + 8 * SECOND, "stdout"),
        (b"line 9\n", T0 + 9 * SECOND, "stderr"),
    ]
    window = read_frames(
        docker_logs(
            plugin, c, since=format_rfc3339_ns(T0 + 5 * SECOND), until=format_rfc3339_ns(T0 + 7 * SECOND)
        )
    )
    assert [e.line for e in window] == [b"line 5\n", b"line 6\n", b"line 7\n"]
    assert read_frames(docker_logs(plugin, c, tail=0)) == []


def test_it_pages_through_everything_when_tail_is_all(plugin, logsite, container):
    logsite.page_size = 4
    lines = [f"paged {i}" for i in range(11)]
    c = logged(logsite, container, lines)
    entries = read_frames(docker_logs(plugin, c, tail=-1))
    assert [e.line.decode() for e in entries] == [f"{x}\n" for x in lines]


def test_it_returns_long_lines_whole(plugin, logsite, container):
    long_line = "L" * (FRAGMENT * 2 + 5)
    c = logged(logsite, container, ["short", long_line])
    entries = read_frames(docker_logs(plugin, c))
    assert [e.line.decode() for e in entries] == ["short\n", long_line + "\n"]
    assert not any(e.partial for e in entries)


def test_it_follows_new_lines_and_ends_when_the_container_stops(plugin, logsite, container):
    c = container()
    c.start()
    c.fifo.entry(b"old 1")
    c.fifo.entry(b"old 2")
    logsite.wait_for(lambda: len(logsite.lines(c.id)) == 2, what="the first lines")
    resp = docker_logs(plugin, c, tail=1, follow=True)
    assert [e.line for e in read_frames(resp, limit=1)] == [b"old 2\n"]
    for i in range(3):
        c.fifo.entry(f"new {i}".encode())
    assert [e.line for e in read_frames(resp, limit=3)] == [b"new 0\n", b"new 1\n", b"new 2\n"]
    c.fifo.entry(b"last words")
    c.stop()
    c.fifo.close()
    # Everything up to the end, then EOF: `docker logs -f` returns once the container stopped.
    assert [e.line for e in read_frames(resp)] == [b"last words\n"]


def test_it_follows_without_history_when_tail_is_zero(plugin, logsite, container):
    c = container()
    c.start()
    c.fifo.entry(b"history")
    logsite.wait_for(lambda: len(logsite.lines(c.id)) == 1, what="history")
    resp = docker_logs(plugin, c, tail=0, follow=True)
    c.fifo.entry(b"fresh")
    c.stop()
    c.fifo.close()
    assert [e.line for e in read_frames(resp)] == [b"fresh\n"]


def test_it_reports_an_unreachable_logsite_as_a_docker_logs_error(plugin, logsite, container):
    c = logged(logsite, container, ["x"])
    logsite.stop()
    status, answer = plugin.call("LogDriver.ReadLogs", {"Info": c.info, "Config": read_config()})
    assert status == 500
    assert "cannot reach Logsite" in answer["Err"]


def test_it_reports_a_refused_token_as_a_docker_logs_error(plugin, logsite, container):
    c = logged(logsite, container, ["x"])
    c.info["Config"] = {"logsite-token": "wrong"}
    status, answer = plugin.call("LogDriver.ReadLogs", {"Info": c.info, "Config": read_config()})
    assert status == 500
    assert "HTTP 401" in answer["Err"]
