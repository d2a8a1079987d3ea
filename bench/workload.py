"""The synthetic log traffic every bench uses: 120-byte lines from 200 containers.

Deterministic for a seed, so separate processes (a sender and the bench that checks what
arrived) build exactly the same lines without shipping them to each other.
"""

import json
import random
import time

from ingest.timeparse import ns_to_rfc3339

CONTAINERS = 200
TENANTS = 5
LINE_BYTES = 120


def line_pool(rng: random.Random, size: int = 4096) -> list[bytes]:
    """Lines shaped like access and app logs, exactly LINE_BYTES long."""
    verbs = ["GET", "POST", "PUT", "DELETE"]
    levels = ["INFO", "INFO", "INFO", "DEBUG", "WARN", "ERROR"]
    pool = []
    for _ in range(size):
        text = (
            f"{rng.choice(levels)} [worker-{rng.randrange(32)}] {rng.choice(verbs)} "
            f"/api/v1/items/{rng.randrange(10**6)} status={rng.choice([200, 200, 201, 404, 500])} "
            f"took={rng.randrange(1, 900)}ms user={rng.randrange(10**5)} trace={rng.getrandbits(64):016x} "
        )
        pool.append(text.ljust(LINE_BYTES, "x")[:LINE_BYTES].encode())
    return pool


def container_weights(rng: random.Random) -> list[float]:
    # A few chatty containers and a long quiet tail, as on a real host.
    return [1.0 / (1 + i) ** 0.8 * rng.uniform(0.8, 1.2) for i in range(CONTAINERS)]


class Containers:
    """200 containers in 5 tenants, with Rainbond-style 32-hex tenant and service ids."""

    def __init__(self, rng: random.Random):
        self.tenants = [f"{rng.getrandbits(128):032x}" for _ in range(TENANTS)]
        self.services = [f"{rng.getrandbits(128):032x}" for _ in range(CONTAINERS // 4)]
        self.ids = [f"{rng.getrandbits(48):012x}" for _ in range(CONTAINERS)]
        self.weights = container_weights(rng)

    def tenant(self, i: int) -> str:
        return self.tenants[i % TENANTS]

    def service(self, i: int) -> str:
        return self.services[i // 4]

    def name(self, i: int) -> str:
        return f"app-{i // 4}-{i % 4}"


def traffic(lines: int, seed: int = 7):
    """Yields (container index, line bytes) for `lines` lines."""
    rng = random.Random(seed)
    pool = line_pool(rng)
    containers = Containers(rng)
    picks = rng.choices(range(CONTAINERS), containers.weights, k=lines)
    for n, idx in enumerate(picks):
        yield idx, pool[n % len(pool)]


def containers_for(seed: int = 7) -> Containers:
    rng = random.Random(seed)
    line_pool(rng)  # same draws as traffic(), so the ids match
    return Containers(rng)


def ndjson_bodies(lines: int, per_body: int, seed: int = 7) -> list[bytes]:
    """HTTP push bodies as a Docker-side shipper sends them: line, ids, stream, ns timestamp."""
    containers = containers_for(seed)
    now = time.time_ns()
    bodies, current = [], []
    for n, (idx, line) in enumerate(traffic(lines, seed)):
        obj = {
            "ts": ns_to_rfc3339(now - (lines - n) * 1000),
            "line": line.decode(),
            "stream": "stderr" if n % 7 == 0 else "stdout",
            "container_id": containers.ids[idx],
            "container_name": containers.name(idx),
            "service": containers.service(idx),
        }
        current.append(json.dumps(obj, separators=(",", ":")))
        if len(current) == per_body:
            bodies.append("\n".join(current).encode())
            current = []
    if current:
        bodies.append("\n".join(current).encode())
    return bodies


def zmq_messages(lines: int, seed: int = 7) -> list[list[bytes]]:
    """3-frame zmq-logger messages: tenant id, service id, b"<cid12>: <line>"."""
    containers = containers_for(seed)
    frames = [
        (containers.tenant(i).encode(), containers.service(i).encode(), containers.ids[i].encode() + b": ")
        for i in range(CONTAINERS)
    ]
    out = []
    for idx, line in traffic(lines, seed):
        tenant, service, prefix = frames[idx]
        out.append([tenant, service, prefix + line])
    return out
