"""How fast the CLS client encodes and sends log lines, against the local stand-in.

    python bench/cls_client.py [--lines 200000]

Prints lines/s for:
  encode      rows → serialised LogGroupList bodies (batcher, protobuf), no network
  +lz4        the same plus raw LZ4 block compression
  send        ClsSink.send to a stand-in that checks everything (its per-value Python checks
              run serially with the client: the client waits for each answer)
  send/count  the same against a stand-in that checks signature, LZ4 and protobuf but only
              counts logs: closest to the client's own ceiling
Each with wall-clock lines/s and lines per CPU-second of the client process (steadier when
other work shares the machine). Then a transport comparison on identical pre-built bodies:
requests.Session vs bare http.client keep-alive, for full batches and for 100-line requests.

The stand-in runs in a separate process so it does not share the client's GIL. The client is a
single process, single thread, as in a Celery task. Rate limiting is off (the limiter is tested
on its own): 500 req/s and 5 MB/s compressed are far above these figures.
"""

import argparse
import http.client
import multiprocessing
import os
import sys
import time

import lz4.block
import requests

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from forward.sinks.cls import ClsClient, ClsSink
from forward.sinks.cls_batch import ClsBatcher, ClsLimits
from forward.sinks.ratelimit import RateLimiter
from forward.sinks.row import ForwardRow

SECRET_ID, SECRET_KEY, TOPIC = "AKIDbench", "bench-key", "bench-topic"


def _serve(count_only: bool, ports, stop) -> None:
    from tests.forward.cls_standin import ClsStandIn

    server = ClsStandIn(credentials={SECRET_ID: SECRET_KEY}, topics=[TOPIC], count_only=count_only).start()
    ports.put(server.port)
    stop.wait()
    ports.put(server.count())
    server.stop()


class StandInProcess:
    def __init__(self, count_only: bool):
        ctx = multiprocessing.get_context("spawn")
        self.ports = ctx.Queue()
        self.stop_event = ctx.Event()
        self.proc = ctx.Process(target=_serve, args=(count_only, self.ports, self.stop_event), daemon=True)

    def __enter__(self):
        self.proc.start()
        self.port = self.ports.get(timeout=30)
        return self

    def stop(self) -> int:
        self.stop_event.set()
        received = self.ports.get(timeout=30)
        self.proc.join(timeout=10)
        return received

    def __exit__(self, *exc):
        if self.proc.is_alive():
            self.proc.kill()


def make_rows(n: int) -> list[ForwardRow]:
    base = time.time_ns()
    rows = []
    for i in range(n):
        rows.append(
            ForwardRow(
                ts_ns=base + i * 1000,
                line=f'10.0.{i % 256}.{i % 97} - - "GET /api/v1/items/{i} HTTP/1.1" 200 {i % 5000} '
                f'"-" "Mozilla/5.0" rt=0.{i % 1000:03d} uid={i * 7919 % 100000}',
                stream="stdout" if i % 10 else "stderr",
                level=6 if i % 10 else 3,
                tenant="acme",
                service="shop-api",
                container_id="3f4e9a1b2c" * 6 + "abcd",
                container_name=f"shop-api-{i % 4}",
                image="registry.local/shop/api:2.14.1",
                host="node-7",
                labels={"com.docker.compose.project": "shop", "com.docker.compose.service": "api"},
            )
        )
    return rows


class Timer:
    """Wall time and this process's CPU time: on a shared machine the CPU figure is the steadier one."""

    def __enter__(self):
        self.wall, self.cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc):
        self.wall = time.perf_counter() - self.wall
        self.cpu = time.process_time() - self.cpu


def rate(label: str, lines: int, t: Timer, extra: str = "") -> None:
    print(
        f"{label:<36} {lines / t.wall:>10,.0f} lines/s  {lines / t.cpu:>10,.0f} lines/cpu-s"
        f"  ({lines:,} lines, {t.wall:.2f} s){extra}"
    )


def bench_encode(rows) -> list[bytes]:
    with Timer() as t:
        bodies = [r.body for r in ClsBatcher().requests(rows)]
    rate("encode", len(rows), t, f"  {len(bodies)} requests")
    raw_bytes = sum(len(b) for b in bodies)
    with Timer() as t:
        compressed = [lz4.block.compress(b, store_size=False) for b in bodies]
    ratio = raw_bytes / sum(len(c) for c in compressed)
    print(f"{'lz4 block compress':<36} {raw_bytes / t.cpu / 1e6:>10,.0f} MB/cpu-s  (ratio {ratio:.1f}x)")
    with Timer() as t:
        for r in ClsBatcher().requests(rows):
            lz4.block.compress(r.body, store_size=False)
    rate("encode + lz4", len(rows), t)
    return bodies


def bench_send(rows, count_only: bool) -> None:
    with StandInProcess(count_only) as standin:
        client = ClsClient(
            f"http://127.0.0.1:{standin.port}",
            SECRET_ID,
            SECRET_KEY,
            rate_limiter=RateLimiter(requests_per_s=1e9, bytes_per_s=1e15),
        )
        with Timer() as t:
            sent = ClsSink(client, TOPIC).send(rows)
        received = standin.stop()
    assert sent == received == len(rows), (sent, received)
    rate("encode + lz4 + send" + (" (count-only)" if count_only else ""), len(rows), t)


def _requests_post(port: int, bodies: list[bytes], client: ClsClient) -> None:
    session = requests.Session()
    url = f"http://127.0.0.1:{port}/structuredlog?topic_id={TOPIC}"
    for body in bodies:
        headers = {
            "Host": client.host,
            "Content-Type": "application/x-protobuf",
            "x-cls-compress-type": "lz4",
            "Authorization": client.sign(TOPIC),
        }
        resp = session.post(url, data=body, headers=headers, timeout=(5, 30))
        assert resp.status_code == 200, resp.content


def _httpclient_post(port: int, bodies: list[bytes], client: ClsClient) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    target = f"/structuredlog?topic_id={TOPIC}"
    for body in bodies:
        headers = {
            "Host": client.host,
            "Content-Type": "application/x-protobuf",
            "x-cls-compress-type": "lz4",
            "Authorization": client.sign(TOPIC),
        }
        conn.request("POST", target, body=body, headers=headers)
        resp = conn.getresponse()
        resp.read()
        assert resp.status == 200
    conn.close()


def bench_transport(rows) -> None:
    big = [lz4.block.compress(r.body, store_size=False) for r in ClsBatcher().requests(rows)]
    small_limits = ClsLimits(max_logs_per_group=100, max_groups_per_request=1)
    small = [
        lz4.block.compress(r.body, store_size=False) for r in ClsBatcher(small_limits).requests(rows[:20_000])
    ]
    for name, post in (("requests.Session", _requests_post), ("http.client keep-alive", _httpclient_post)):
        for label, bodies in (("full batches", big), ("100-line requests", small)):
            with StandInProcess(count_only=True) as standin:
                client = ClsClient(f"http://127.0.0.1:{standin.port}", SECRET_ID, SECRET_KEY)
                with Timer() as t:
                    post(standin.port, bodies, client)
                standin.stop()
            print(
                f"{name + ', ' + label:<42} {len(bodies) / t.wall:>7,.0f} req/s  "
                f"client CPU {t.cpu / len(bodies) * 1e6:>7,.0f} µs/request  ({len(bodies)} requests)"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--lines", type=int, default=200_000)
    args = parser.parse_args()
    rows = make_rows(args.lines)
    print(f"CLS client, {args.lines:,} lines of ~{len(rows[0].line)} chars + metadata, cpus={os.cpu_count()}")
    bench_encode(rows)
    bench_send(rows, count_only=False)
    bench_send(rows, count_only=True)
    bench_transport(rows)


if __name__ == "__main__":
    main()
