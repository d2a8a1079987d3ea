"""List, and put back, batches that PostgreSQL refused (docs/write-path.md, "Data Postgres refuses").

    manage.py quarantine              # what is kept aside, per writer: files, batches, lines, a sample
    manage.py quarantine --requeue    # once the cause is fixed: move it into the writers' spools

A requeued batch is replayed by its writer like any spooled batch (in order, once, by its ref);
if Postgres refuses it again it comes back here.
"""

from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand

from ingest.store.spool import CorruptSegment, batches_in


def quarantines(spool_root: Path) -> list[Path]:
    return sorted(p for p in spool_root.glob("*/quarantine") if p.is_dir())


class Command(BaseCommand):
    help = "List the batches PostgreSQL refused, or requeue them into the spool for replay."

    def add_arguments(self, parser):
        parser.add_argument("--requeue", action="store_true", help="move them back into their writer's spool")

    def handle(self, *args, **options):
        root = Path(settings.LOGSITE_SPOOL_DIR)
        found = False
        for directory in quarantines(root):
            segments = sorted(directory.glob("*.spool"))
            if not segments:
                continue
            found = True
            writer = directory.parent.name
            batches = lines = 0
            sample = ""
            for segment in segments:
                try:
                    for batch in batches_in(segment):
                        batches += 1
                        lines += len(batch.rows)
                        if not sample and batch.rows:
                            sample = bytes(batch.rows[0][6])[:120].decode("utf-8", "replace")
                except CorruptSegment as e:
                    self.stderr.write(str(e))
            self.stdout.write(f"{writer}: {len(segments)} file(s), {batches} batch(es), {lines} line(s)")
            if sample:
                self.stdout.write(f"  first line: {sample!r}")
            if options["requeue"]:
                for segment in segments:
                    segment.rename(directory.parent / segment.name)
                self.stdout.write(f"  requeued into {directory.parent}; the writer replays them")
        if not found:
            self.stdout.write(f"nothing quarantined under {root}")
