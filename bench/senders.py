"""The processes bench/ingest.py runs beside ingest: senders and a bare pyzmq receiver.

Each runs in its own process (multiprocessing, spawn) so that the sender's CPU is not the
ingest process's CPU. Protocol with the parent: build everything, put "ready" on `out`,
wait for `go`, then put a dict of wall-clock times and counts on `out`.
"""

import http.client
import queue
import threading
import time

import zmq

from bench import workload

# Same receive queue as the zmq driver's default, so the raw rate is measured like for like.
from ingest.receivers.zmq import DEFAULT_RCVHWM, recv_frames


def http_sender(host: str, port: int, token: str, lines: int, per_body: int, conns: int, go, out) -> None:
    bodies = workload.ndjson_bodies(lines, per_body)
    todo: queue.Queue = queue.Queue()
    for body in bodies:
        todo.put(body)
    accepted = [0] * conns
    errors: list[str] = []

    def post_all(slot: int) -> None:
        conn = http.client.HTTPConnection(host, port, timeout=300)
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/x-ndjson"}
        while True:
            try:
                body = todo.get_nowait()
            except queue.Empty:
                break
            conn.request("POST", "/api/v1/push", body=body, headers=headers)
            response = conn.getresponse()
            answer = response.read()
            if response.status == 200:
                accepted[slot] += body.count(b"\n") + 1
            else:
                errors.append(f"{response.status} {answer[:200]!r}")
        conn.close()

    out.put("ready")
    go.wait()
    started = time.time()
    threads = [threading.Thread(target=post_all, args=(n,)) for n in range(conns)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    out.put({"started": started, "finished": time.time(), "accepted": sum(accepted), "errors": errors[:5]})


def zmq_sender(endpoint: str, lines: int, go, out) -> None:
    messages = workload.zmq_messages(lines)
    ctx = zmq.Context()
    sock = ctx.socket(zmq.PUB)
    # The zmq-logger driver keeps libzmq's default send HWM (1000) and so drops, uncounted, in
    # the sender whenever the receiving host is starved of CPU. Here every message must reach
    # the receiver, so that what is measured is how fast it takes them and what it drops.
    sock.setsockopt(zmq.SNDHWM, 0)
    sock.connect(endpoint)
    time.sleep(1.0)  # PUB/SUB slow joiner: let the subscription reach the publisher first
    out.put("ready")
    go.wait()
    started = time.time()
    send = sock.send_multipart
    for frames in messages:
        send(frames)
    sent = time.time()
    sock.close(linger=30_000)  # flush what is still queued to the receiver
    ctx.term()
    out.put({"started": started, "sent": sent, "count": len(messages)})


def raw_zmq_receiver(endpoint: str, lines: int, out) -> None:
    """Only draining whole messages (NOBLOCK), with the same receive call as ingest's zmq
    receiver (ingest.receivers.zmq.recv_frames): the ceiling any zmq receiver can reach."""

    ctx = zmq.Context()
    sock = ctx.socket(zmq.SUB)
    sock.setsockopt(zmq.RCVHWM, DEFAULT_RCVHWM)
    sock.setsockopt(zmq.SUBSCRIBE, b"")
    sock.bind(endpoint)
    out.put(sock.getsockopt(zmq.LAST_ENDPOINT).decode())
    poller = zmq.Poller()
    poller.register(sock, zmq.POLLIN)
    received = 0
    first = last = 0.0
    cpu_start = time.process_time()
    idle_since = None
    while received < lines:
        if not poller.poll(100):
            idle_since = idle_since or time.monotonic()
            if received and time.monotonic() - idle_since > 3:
                break  # the rest was dropped on the way
            continue
        idle_since = None
        while True:
            try:
                recv_frames(sock)
            except zmq.Again:
                break
            received += 1
        last = time.time()
        first = first or last
    sock.close(linger=0)
    ctx.term()
    out.put({"received": received, "first": first, "last": last, "cpu": time.process_time() - cpu_start})
