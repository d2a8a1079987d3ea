"""The one record type every receiver produces.

Receivers only translate their wire format into `Record`s; all normalisation (UTF-8, NUL,
size caps, timestamps, level) happens once, in ingest/pipeline.py.
"""

from dataclasses import dataclass

STDOUT = "stdout"
STDERR = "stderr"
# attrs key of a record's de-duplication key: a sender that re-sends (systemd-journal-upload)
# gives the same record the same key, and the writer stores a key once (ingest/store/dedup.py).
DEDUP_ATTR = "dedup_key"


@dataclass(slots=True)
class Record:
    # Raw bytes are welcome: the pipeline decides how they become text.
    line: bytes | str
    # The line's own time (Unix ns) when the driver sends one; None means "use receive time".
    ts_ns: int | None = None
    received_ns: int = 0
    tenant: str = "default"
    service: str = ""
    container_id: str = ""
    container_name: str = ""
    image: str = ""
    host: str = ""
    stream: str = STDOUT
    # syslog severity 0 (emerg) .. 7 (debug); None lets the pipeline parse it from the line.
    level: int | None = None
    attrs: dict | None = None
    # Container metadata that repeats per line; the writer stores it once in `containers`.
    labels: dict | None = None
    driver_id: int | None = None
