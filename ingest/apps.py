from django.apps import AppConfig
from django.db.models.signals import post_delete, post_save


class IngestConfig(AppConfig):
    name = "ingest"

    def ready(self):
        from ingest.models import Driver, MultilineRule
        from ingest.notify import drivers_changed

        post_save.connect(drivers_changed, sender=Driver, dispatch_uid="ingest.drivers_changed.save")
        post_delete.connect(drivers_changed, sender=Driver, dispatch_uid="ingest.drivers_changed.delete")
        # Rules travel with the drivers: one notification makes ingest re-read both.
        post_save.connect(drivers_changed, sender=MultilineRule, dispatch_uid="ingest.rules_changed.save")
        post_delete.connect(drivers_changed, sender=MultilineRule, dispatch_uid="ingest.rules_changed.delete")
