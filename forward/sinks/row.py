"""What a sink is given: one stored log line with its container's metadata.

forward/tasks.py builds these from `logs` joined with `containers`. Sinks only read attributes,
so an ingest `Record` with `ts_ns` set works too.
"""

from dataclasses import dataclass


@dataclass(slots=True)
class ForwardRow:
    ts_ns: int
    line: str | bytes
    stream: str = "stdout"
    level: int | None = None
    tenant: str = "default"
    service: str = ""
    container_id: str = ""
    container_name: str = ""
    image: str = ""
    host: str = ""
    labels: dict | None = None
    attrs: dict | None = None
