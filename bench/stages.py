"""Python cost per line of each write-path stage, in one process, without I/O.

    python -m bench.stages [--lines 200000]

Prints CPU µs/line (process time, so that other work on the machine skews it less) for:
NDJSON decode + Record building (HTTP push), zmq frame parsing + Record building, Docker's
RFC 5424 syslog decoding + Record building (with ingest/native's C decoder and on the Python path),
normalize_batch and encode_rows (binary COPY payload), each with ingest/native's C loops and on
the Python path, and fanout.build_messages. These add up
to most of the ingest process's CPU per line (bench/ingest.py measures the whole).
"""

import argparse
import os
import time

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "logsite.settings")


def per_line(fn, lines: int, repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.process_time()
        fn()
        best = min(best, time.process_time() - t0)
    return best / lines * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--lines", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=5000)
    args = parser.parse_args()
    import django

    django.setup()
    from bench import receiver_senders, workload
    from ingest import fanout
    from ingest import normalize as normalize_module
    from ingest.native.load import native
    from ingest.normalize import Limits, normalize_batch
    from ingest.receivers.base import DriverConfig
    from ingest.receivers.http_push import decode_body, record_from_object
    from ingest.receivers.syslog import StreamFramer, SyslogReceiver
    from ingest.receivers.zmq import parse_frames
    from ingest.record import Record
    from ingest.store.copy import encode_rows, encode_rows_python
    from ingest.store.writer import CommittedBatch

    driver = DriverConfig(id=1, name="bench", kind="http", bind="", tenant="bench", token_hash="")
    limits = Limits(256 * 1024, 30 * 86400 * 10**9)
    bodies = workload.ndjson_bodies(args.lines, args.batch)
    messages = workload.zmq_messages(args.lines)
    now = time.time_ns()

    def http_records():
        return [[record_from_object(n, obj, driver, now) for n, obj in decode_body(body)] for body in bodies]

    def zmq_records():
        out = []
        for frames in messages:
            tenant, service, cid, line = parse_frames(frames)
            out.append(Record(line=line, received_ns=now, tenant=tenant, service=service, container_id=cid))
        return out

    syslog_receiver = SyslogReceiver(
        DriverConfig(
            id=2, name="bench", kind="syslog", bind="tcp://127.0.0.1:0", tenant="bench", token_hash=""
        ),
        pipeline=None,
    )
    syslog_frames = StreamFramer().feed(receiver_senders.syslog_stream(args.lines))

    def syslog_records(decode):
        def run():
            for i in range(0, len(syslog_frames), 500):
                decode(syslog_frames[i : i + 500], "10.0.0.1", now)

        return run

    record_batches = http_records()
    batches = [normalize_batch(records, limits) for records in record_batches]
    ckeys = list(range(1, 1000))

    def normalize():
        for records in record_batches:
            normalize_batch(records, limits)

    def normalize_python():
        saved, normalize_module.native = normalize_module.native, None
        try:
            normalize()
        finally:
            normalize_module.native = saved

    def encode():
        for batch in batches:
            encode_rows(batch.rows, ckeys, 1)

    def encode_python():
        for batch in batches:
            encode_rows_python(batch.rows, ckeys, 1)

    def build():
        for batch in batches:
            fanout.build_messages(CommittedBatch(batch, ckeys, 1))

    suffix = " (C)" if native is not None else " (C not built)"
    stages = [
        ("http: NDJSON decode + Record", http_records),
        ("zmq: parse frames + Record", zmq_records),
        (f"syslog: Docker RFC 5424 + Record{suffix}", syslog_records(syslog_receiver._decode)),
        ("syslog: the same, Python path", syslog_records(syslog_receiver._decode_python)),
        (f"normalize_batch{suffix}", normalize),
        ("normalize_batch, Python path", normalize_python),
        (f"encode_rows{suffix}", encode),
        ("encode_rows, Python path", encode_python),
        ("fanout.build_messages", build),
    ]
    print(
        f"{args.lines:,} lines, batches of {args.batch}, load {os.getloadavg()[0]:.2f}; CPU time, best of 3"
    )
    for name, fn in stages:
        print(f"{name:<40} {per_line(fn, args.lines):6.2f} µs/line")


if __name__ == "__main__":
    main()
