"""Loads _native when it is usable (see the package docstring)."""

import dataclasses
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
        module = importlib.import_module("ingest.native._native")
    except ImportError as e:
        reason = f"not built ({e}); run `python -m ingest.native.build`"
    else:
        if source_sha256() == module.SOURCE_SHA256:
            from ingest.record import Record

            # Records are built from C by filling their slots: nothing may run in __init__.
            if hasattr(Record, "__post_init__"):
                raise RuntimeError("ingest.native cannot build a Record that has __post_init__")
            module.configure(Record, tuple(f.name for f in dataclasses.fields(Record)))
            return module
        reason = "built from other sources than ingest/native/*.c; run `python -m ingest.native.build`"
    if required:
        raise RuntimeError(f"ingest.native: {reason}")
    log.warning("ingest.native: %s; using the Python write path (slower)", reason)
    return None


native = load()
