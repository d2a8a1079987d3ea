import argparse
import asyncio
import gc
import logging

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from ingest.processes import Supervisor
from ingest.service import IngestService, writer_name


class Command(BaseCommand):
    help = "Run every enabled driver's receiver, the ingest pipeline and the batching writer."

    def add_arguments(self, parser):
        parser.add_argument(
            "--driver",
            type=int,
            action="append",
            dest="drivers",
            help="Only run this driver id (repeatable). Default: all enabled drivers.",
        )
        parser.add_argument(
            "--processes",
            type=int,
            default=None,
            help="Ingest processes to run (default: LOGSITE_INGEST_PROCESSES, 1). See ingest/processes.py.",
        )
        parser.add_argument("--process", default=None, help=argparse.SUPPRESS)  # "i/N": a supervised child

    def handle(self, *args, **options):
        logging.getLogger("ingest").setLevel(logging.INFO)
        only = set(options["drivers"]) if options["drivers"] else None
        count = options["processes"] or settings.LOGSITE_INGEST_PROCESSES
        if options["process"] is None and count > 1:
            extra = [arg for driver in sorted(only or ()) for arg in ("--driver", str(driver))]
            raise SystemExit(Supervisor(count, writer_name(), extra).run())
        index, count = parse_process(options["process"] or "0/1")
        tune_gc()
        asyncio.run(IngestService(only_driver_ids=only, process_index=index, process_count=count).run())


def parse_process(value: str) -> tuple[int, int]:
    index, _, count = value.partition("/")
    try:
        i, n = int(index), int(count)
    except ValueError:
        raise CommandError(f"--process must be INDEX/COUNT, not {value!r}") from None
    if not 0 <= i < n:
        raise CommandError(f"--process {value}: index must be below the count")
    return i, n


def tune_gc() -> None:
    """Less garbage-collector work per line; cyclic garbage is rare on the write path.

    Every line allocates a few container objects (a dict, a Record) that reference counting
    frees; the cyclic collector still walks them, and its full passes walk everything Django
    loaded at start. Freezing the start-up heap and collecting the youngest generation every
    10,000 allocations instead of 700 took ~20% off the CPU per HTTP-pushed line (bench/stages.py).
    """
    gc.freeze()
    gc.set_threshold(10_000, 10, 10)
