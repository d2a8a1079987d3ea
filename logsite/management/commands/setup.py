import json
import sys

from django.core.management import call_command
from django.core.management.base import BaseCommand

from forward.schedule import ensure_schedule
from ingest.schedules import ensure_schedules
from logsite.superuser import ensure_superuser


class Command(BaseCommand):
    help = (
        "Prepare the database: apply migrations, create the beat schedule of forwarding, then create "
        "the first superuser if there is none "
        "(LOGSITE_ADMIN_USER, default admin, with LOGSITE_ADMIN_PASSWORD or a generated password "
        "that is printed only this once), and the missing maintenance beat schedules. Safe to run "
        "at every start."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--json",
            action="store_true",
            help="Print the superuser result as one JSON object on stdout, everything else on stderr.",
        )

    def handle(self, *args, **options):
        as_json = options["json"]
        # Run from one process so that a start pays for Django's start-up once, not twice.
        call_command("migrate", interactive=False, stdout=sys.stderr if as_json else self.stdout)
        ensure_schedule()
        created = ensure_schedules()
        if created:
            (sys.stderr if as_json else self.stdout).write(f"Created beat schedules: {', '.join(created)}.\n")
        result = ensure_superuser()
        if as_json:
            self.stdout.write(json.dumps(result))
        elif not result["created"]:
            self.stdout.write(f"Superuser {result['username']!r} exists.")
        elif result["password"]:
            self.stdout.write(
                f"Created superuser {result['username']!r} with password {result['password']} "
                "(shown only this once; only its hash is stored)."
            )
        else:
            self.stdout.write(f"Created superuser {result['username']!r} with LOGSITE_ADMIN_PASSWORD.")
