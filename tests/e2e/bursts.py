"""Containers that write numbered lines as fast as busybox can, and time themselves.

Shared by tests/e2e/test_plugin_e2e.py and bench/plugin.py. The container measures its own
writing time from /proc/uptime (busybox `date` has no sub-second format) and prints it as its
last line, `elapsed <start> <end>`, so the figure travels through the log driver like any line.
"""

from __future__ import annotations

PAD = "x" * 80  # lines of about 100 bytes, like a typical access log line


def script(lines: int, tag: str, rounds: int = 1, pause: float = 0.0, pad: str = PAD) -> str:
    """Shell for busybox: `lines` numbered lines in `rounds` awk runs `pause` seconds apart."""
    per_round = lines // rounds
    body = f'printf "{tag} %06d {pad}\\n", r * {per_round} + j'
    awk = f"awk -v r=$i 'BEGIN {{ for (j = 1; j <= {per_round}; j++) {body} }}'"
    return (
        "s=$(cut -d' ' -f1 /proc/uptime); i=0; "
        f"while [ $i -lt {rounds} ]; do {awk}; i=$((i + 1)); [ $i -lt {rounds} ] && sleep {pause}; done; "
        "e=$(cut -d' ' -f1 /proc/uptime); echo \"elapsed $s $e\""
    )


def expected(tag: str, lines: int, pad: str = PAD) -> list[str]:
    return [f"{tag} {n:06d} {pad}" for n in range(1, lines + 1)]


def is_timing(line: str) -> bool:
    return line.startswith("elapsed ")


def elapsed(timing_line: str) -> float:
    """Seconds the container spent writing, from its `elapsed <start> <end>` line."""
    _, start, end = timing_line.split()
    return float(end) - float(start)
