"""The write path's per-line loops in C (rowcodec.c), used when built from the current source.

`ingest.native.load.rowcodec` is the loaded extension, or None when it is not built, was built from another
version of rowcodec.c (a stale build is never used: its SOURCE_SHA256 must match the file), or
LOGSITE_NATIVE=0. Callers keep their Python path, which stays the definition of every row
(tests/ingest/test_native.py compares the two on generated input). Build it with
`python -m ingest.native.build`; `manage.py run` and .ci/run do.
"""
