"""Loads _rowcodec when it is usable (see the package docstring)."""

import importlib
import logging
import os

from ingest.native.source import source_sha256

log = logging.getLogger(__name__)


def load(required: bool = False):
    """The extension, configured for Record; None (with the reason logged) when unusable."""
    if os.environ.get("LOGSITE_NATIVE", "1") == "0":
        return None
    try:
        module = importlib.import_module("ingest.native._rowcodec")
    except ImportError as e:
        reason = f"not built ({e}); run `python -m ingest.native.build`"
    else:
        if source_sha256() == module.SOURCE_SHA256:
            from ingest.record import Record

            module.configure(Record)
            return module
        reason = "built from an older rowcodec.c; run `python -m ingest.native.build`"
    if required:
        raise RuntimeError(f"ingest.native: {reason}")
    log.warning("ingest.native: %s; using the Python write path (slower)", reason)
    return None


rowcodec = load()
