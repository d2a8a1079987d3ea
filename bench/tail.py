"""Live tail: driver → browser latency and the tab's JS heap.

Lines are pushed over HTTP (the ingest process's push receiver) at a fixed rate, each stamped
with the wall-clock time it was sent; the tail page, open in Debian's Chromium, reads the
stamp when the line is put into the DOM (after the animation frame). Prints p50/p90/p99/max
per rate, how many lines arrived, and the tab's JS heap (CDP Runtime.getHeapUsage after a
forced GC) sampled through the last run.

    python -m bench.tail                               # 1k and 10k lines/s, 20 s each
    python -m bench.tail --rates 10000 --seconds 600 --heap-every 60   # the 10-minute heap run

It creates (and drops) its own database (`--db`, default `logsite_bench_tail`); Redis comes
from REDIS_URL. The page hands its measurements over every 200 ms (so the bench itself grows
nothing in the tab), and with LOGSITE_TAIL_TRACE=1 in the servers' environment fan-out and the
consumer stamp each message, which gives the time spent per stage.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import aiohttp
import psycopg

REPO = Path(__file__).resolve().parents[1]
STAMP = "sent="
HEADINGS = ("rate/s", "sent", "shown", "p50 ms", "p90 ms", "p99 ms", "max ms")
# Per stage, from one message's first line: sent → fan-out start (batch wait, COPY, commit),
# → handed to Redis, → the consumer has it, → the consumer sent it, → the page parsed it.
STAGES = ("wait+commit", "build", "redis", "filter", "socket")
HOOK = """
window.__lat = []; window.__stages = []; window.__lines = 0;
window.logsiteTailOnRender = function (batch) {
  var now = Date.now();
  window.__lines += batch.length;
  for (var i = 0; i < batch.length; i++) {
    var text = batch[i][6], at = text.indexOf("sent=");
    if (at !== -1) window.__lat.push(now - parseFloat(text.slice(at + 5)));
  }
};
window.logsiteTailOnMessage = function (message) {
  if (message.type !== "lines" || !message.trace || !message.lines.length) return;
  var text = message.lines[0][6], at = text.indexOf("sent="), t = message.trace;
  if (at === -1) return;
  window.__stages.push([parseFloat(text.slice(at + 5)), t.fanout_ms, t.publish_ms, t.received_ms,
                        t.sent_ms, Date.now()]);
};
"""
DRAIN = (
    "() => { var r = [window.__lat, window.__stages]; window.__lat = []; window.__stages = []; return r; }"
)


class Figures:
    """Latencies as a histogram of whole milliseconds (a 10-minute run is millions of lines)."""

    def __init__(self):
        self.latency = collections.Counter()
        self.stages = [collections.Counter() for _ in STAGES]

    def add(self, latencies: list[float], stages: list[list[float]]) -> None:
        self.latency.update(round(v) for v in latencies)
        for row in stages:
            for i, counter in enumerate(self.stages):
                if row[i] is not None and row[i + 1] is not None:
                    counter[round(row[i + 1] - row[i])] += 1


def percentiles(counter: collections.Counter, ps=(50, 90, 99, 100)) -> list[float]:
    total = sum(counter.values())
    if not total:
        return [float("nan")] * len(ps)
    out, seen, keys = [], 0, sorted(counter)
    wanted = iter(sorted(ps))
    p = next(wanted)
    for key in keys:
        seen += counter[key]
        while p is not None and seen >= min(total, total * p / 100):
            out.append(float(key))
            p = next(wanted, None)
        if p is None:
            break
    return out


def load_average() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def prepare_database(db_name: str) -> str:
    with psycopg.connect("host=127.0.0.1 user=postgres dbname=postgres", autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {db_name} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {db_name}")
    url = f"postgres://postgres@127.0.0.1:5432/{db_name}"
    env = dict(os.environ, DATABASE_URL=url)
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=REPO, env=env, check=True)
    return url


def drop_database(db_name: str) -> None:
    with psycopg.connect("host=127.0.0.1 user=postgres dbname=postgres", autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {db_name} WITH (FORCE)")


def setup_django(url: str, prefix: str) -> None:
    os.environ["DATABASE_URL"] = url
    os.environ["LOGSITE_CHANNEL_PREFIX"] = prefix
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "logsite.settings")
    import django

    django.setup()


async def produce(url: str, token: str, rate: int, seconds: float, ticks_per_s: int = 50) -> int:
    """Pushes `rate` lines/s for `seconds`, one POST per tick, never waiting for a POST to end."""
    per_tick = max(1, rate // ticks_per_s)
    sent = 0
    tasks: set[asyncio.Task] = set()
    headers = {"Authorization": f"Bearer {token}"}
    loop = asyncio.get_running_loop()
    async with aiohttp.ClientSession(headers=headers) as session:

        async def post(body: bytes) -> None:
            async with session.post(url, data=body) as response:
                if response.status != 200:
                    print("push failed:", response.status, await response.text(), file=sys.stderr)

        start = loop.time()
        tick = 0
        while (now := loop.time()) - start < seconds:
            stamp = f"{time.time() * 1000:.3f}"
            body = "\n".join(
                f'{{"line": "bench line {sent + i} {STAMP}{stamp}", "container_id": "bench-1", '
                f'"container_name": "bench-1"}}'
                for i in range(per_tick)
            )
            sent += per_tick
            task = asyncio.create_task(post(body.encode()))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            tick += 1
            await asyncio.sleep(max(0, start + tick / ticks_per_s - now))
        await asyncio.gather(*tasks)
    return sent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def busy_seconds(cdp) -> dict[str, float]:
    """The renderer main thread's time so far (CDP Performance metrics)."""
    cdp.send("Performance.enable")
    metrics = {m["name"]: m["value"] for m in cdp.send("Performance.getMetrics")["metrics"]}
    names = ("TaskDuration", "ScriptDuration", "LayoutDuration", "RecalcStyleDuration")
    return {name: metrics.get(name, 0.0) for name in names}


def heap_mb(cdp) -> float:
    cdp.send("HeapProfiler.collectGarbage")
    return cdp.send("Runtime.getHeapUsage")["usedSize"] / 2**20


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rates", default="1000,10000", help="lines/s, comma-separated")
    parser.add_argument("--seconds", type=float, default=20, help="duration of each rate's run")
    parser.add_argument("--warmup", type=float, default=3, help="seconds excluded at the start of each run")
    parser.add_argument("--keep-db", action="store_true")
    parser.add_argument("--db", default="logsite_bench_tail", help="database to create (and drop)")
    parser.add_argument("--batch-wait-ms", type=int, default=None, help="ingest's LOGSITE_BATCH_WAIT_MS")
    parser.add_argument("--no-trace", action="store_true", help="servers without LOGSITE_TAIL_TRACE")
    parser.add_argument(
        "--heap-every",
        type=float,
        default=0,
        help="seconds between heap samples during a run (0: at its start and end only); each"
        " sample forces a full GC in the tab, which stalls it and shows in the latency",
    )
    options = parser.parse_args()
    rates = [int(r) for r in options.rates.split(",")]
    if not options.no_trace:
        os.environ["LOGSITE_TAIL_TRACE"] = "1"  # inherited by ingest and uvicorn
    print(f"load average at start: {load_average()} ({os.cpu_count()} CPUs)")

    url = prepare_database(options.db)
    prefix = f"bench-tail-{uuid.uuid4().hex[:8]}"
    setup_django(url, prefix)
    from django.contrib.auth.models import User
    from playwright.sync_api import sync_playwright

    from ingest.models import Membership, Tenant
    from tests.base import make_driver
    from tests.search.tail.web import CHROMIUM, CHROMIUM_ARGS, WebProcess, log_in
    from tests.support.processes import IngestProcess

    tenant = Tenant.objects.create(slug="bench", name="Bench")
    user = User.objects.create_user("bench", password="bench-password")
    Membership.objects.create(user=user, tenant=tenant)
    push_port, web_port = free_port(), free_port()
    driver, token = make_driver("http", f"127.0.0.1:{push_port}", tenant=tenant)
    tmp = Path(tempfile.mkdtemp(prefix="bench-tail-"))
    wait = {} if options.batch_wait_ms is None else {"LOGSITE_BATCH_WAIT_MS": options.batch_wait_ms}
    ingest = IngestProcess(tmp, writer="bench-tail", **wait)
    web = WebProcess(tmp, web_port)
    push_url = f"http://127.0.0.1:{push_port}/api/v1/push"
    try:
        ingest.start(wait_for_drivers=[driver.id])
        web.start()
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
            page = browser.new_page()
            page.add_init_script(HOOK)
            log_in(page, web.url, "bench", "bench-password")
            page.goto(web.url + "/tail/")
            page.wait_for_function("() => /live/.test(document.getElementById('tail-status').textContent)")
            cdp = page.context.new_cdp_session(page)
            print(" ".join(f"{h:>8}" for h in HEADINGS))
            heap_series: list[tuple[float, float]] = []
            for rate in rates:
                page.evaluate("() => { window.__lines = 0; }")
                busy_before = busy_seconds(cdp)
                heap_series = [(0.0, heap_mb(cdp))]
                started = time.monotonic()
                figures = Figures()

                def sample(started=started, heap_series=heap_series):
                    heap_series.append((time.monotonic() - started, heap_mb(cdp)))

                def drain(figures=figures, started=started):
                    latencies, stages = page.evaluate(DRAIN)
                    if time.monotonic() - started >= options.warmup:
                        figures.add(latencies, stages)

                sent = run_rate(
                    push_url, token, rate, options.seconds, page, sample, drain, options.heap_every
                )
                page.wait_for_timeout(2000)  # let the last lines arrive
                drain()
                busy = {k: v - busy_before[k] for k, v in busy_seconds(cdp).items()}
                shown = page.evaluate("() => window.__lines")
                p50, p90, p99, top = percentiles(figures.latency)
                print(f"{rate:>8} {sent:>8} {shown:>8} {p50:>8.0f} {p90:>8.0f} {p99:>8.0f} {top:>8.0f}")
                stage_text = ", ".join(
                    f"{name} {'/'.join(f'{v:.0f}' for v in percentiles(c, (50, 99)))}"
                    for name, c in zip(STAGES, figures.stages, strict=True)
                )
                print(f"         stages p50/p99 ms (first line of each message): {stage_text}")
                per_line = {k: f"{v / max(shown, 1) * 1e6:.0f}" for k, v in busy.items()}
                print(f"         renderer CPU per shown line (µs): {per_line}")
                skipped = page.eval_on_selector_all("#tail-log .skipped", "n => n.map(x => x.textContent)")
                if skipped:
                    print(f"         skip markers: {skipped[:3]}{' …' if len(skipped) > 3 else ''}")
                print(f"         load average: {load_average()}")
            sample()
            print(
                "JS heap (MB, after GC) during the last run:",
                ", ".join(f"{t:.0f}s {m:.1f}" for t, m in heap_series),
            )
            print(f"DOM lines at the end: {page.eval_on_selector_all('#tail-log .line', 'n => n.length')}")
            browser.close()
    finally:
        web.stop()
        ingest.stop()
        from django.db import connections

        connections.close_all()
        if not options.keep_db:
            drop_database(options.db)


def run_rate(push_url, token, rate, seconds, page, sample, drain, heap_every: float) -> int:
    """Produces in a thread of its own while this thread drains the page's figures every
    200 ms and samples the heap every `heap_every` seconds (if set)."""
    result: list[int] = []
    producer = threading.Thread(
        target=lambda: result.append(asyncio.run(produce(push_url, token, rate, seconds)))
    )
    producer.start()
    next_sample = time.monotonic() + heap_every
    while producer.is_alive():
        page.wait_for_timeout(200)  # keeps Playwright's event pump (and the page) going
        drain()
        if heap_every and time.monotonic() >= next_sample:
            sample()
            next_sample += heap_every
    producer.join()
    return result[0]


if __name__ == "__main__":
    main()
