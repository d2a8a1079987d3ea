import asyncio
import logging

from django.core.management.base import BaseCommand

from ingest.service import IngestService


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

    def handle(self, *args, **options):
        logging.getLogger("ingest").setLevel(logging.INFO)
        only = set(options["drivers"]) if options["drivers"] else None
        asyncio.run(IngestService(only_driver_ids=only).run())
