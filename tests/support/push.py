"""A steady HTTP push sender in a background thread that remembers exactly what was acknowledged.

Each container gets its own sequence numbers, carried in the line ("<cid> seq=<n>"), so a test
can compare what the store holds with what the sender was told: every 200 is an acknowledgement,
anything else is a refusal, and a request that died without an answer has an unknown outcome.
"""

import json
import threading
import time

import requests

WAIT_S = 120  # bounds a broken test; nothing is timed


def seq_of(line: str) -> int:
    return int(line.rsplit("seq=", 1)[1])


class PushStream:
    def __init__(self, url: str, token: str, containers=("c0",), lines_per_container: int = 10):
        self.url = url
        self.token = token
        self.containers = list(containers)
        self.lines_per_container = lines_per_container
        self.acked: dict[str, list[int]] = {c: [] for c in self.containers}
        self.refused: list[tuple[int, str]] = []  # (status, body) of non-200 answers
        self.unknown: dict[str, list[int]] = {c: [] for c in self.containers}  # no answer at all
        self.errors: list[str] = []
        self._next = dict.fromkeys(self.containers, 0)
        self._lock = threading.Condition()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="push-stream", daemon=True)

    def __enter__(self) -> "PushStream":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(WAIT_S)
        assert not self._thread.is_alive(), "the push stream did not stop"

    # --- what happened -----------------------------------------------------------------------
    def acked_lines(self) -> int:
        with self._lock:
            return sum(len(s) for s in self.acked.values())

    def wait_acked(self, at_least: int) -> int:
        deadline = time.monotonic() + WAIT_S
        with self._lock:
            while sum(len(s) for s in self.acked.values()) < at_least:
                left = deadline - time.monotonic()
                if left <= 0 or not self._thread.is_alive():
                    raise AssertionError(
                        f"only {self.acked_lines_unlocked()} of {at_least} lines acknowledged; "
                        f"refused: {self.refused[-3:]}, errors: {self.errors[-3:]}"
                    )
                self._lock.wait(min(left, 1))
            return sum(len(s) for s in self.acked.values())

    def acked_lines_unlocked(self) -> int:
        return sum(len(s) for s in self.acked.values())

    # --- sending -----------------------------------------------------------------------------
    def _body(self) -> tuple[bytes, dict[str, list[int]]]:
        records, seqs = [], {}
        for cid in self.containers:
            first = self._next[cid]
            seqs[cid] = list(range(first, first + self.lines_per_container))
            self._next[cid] = first + self.lines_per_container
            records += [json.dumps({"line": f"{cid} seq={n}", "container_id": cid}) for n in seqs[cid]]
        return "\n".join(records).encode(), seqs

    def _run(self) -> None:
        session = requests.Session()
        headers = {"Authorization": f"Bearer {self.token}"}
        while not self._stop.is_set():
            body, seqs = self._body()
            try:
                response = session.post(self.url, data=body, headers=headers, timeout=WAIT_S)
            except requests.RequestException as e:
                with self._lock:
                    for cid, numbers in seqs.items():
                        self.unknown[cid] += numbers
                    self.errors.append(f"{type(e).__name__}: {e}")
                session.close()
                session = requests.Session()
                self._stop.wait(0.05)  # the server is going away; do not spin
                continue
            with self._lock:
                if response.status_code == 200:
                    for cid, numbers in seqs.items():
                        self.acked[cid] += numbers
                    self._lock.notify_all()
                else:
                    self.refused.append((response.status_code, response.text[:200]))
        session.close()
