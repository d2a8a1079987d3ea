"""The write path's per-line loops in C, used when built from the current sources.

- rowcodec.c: normalize_batch's common case and the binary COPY encoder;
- syslog5424.c: Docker's RFC 5424 syslog messages to Records;
- record_slots.c: reading and building Records through their slots; module.c: the module.

`ingest.native.load.native` is the loaded extension, or None when it is not built, was built
from other sources (a stale build is never used: its SOURCE_SHA256 must match the files), or
LOGSITE_NATIVE=0. Callers keep their Python path, which stays the definition of every row
(tests/ingest/test_native.py compares the two on generated input). Build it with
`python -m ingest.native.build`; `manage.py run` and .ci/run do.
"""
