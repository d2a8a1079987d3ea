from django.apps import AppConfig
from django.db.models.signals import post_delete, post_save


class IngestConfig(AppConfig):
    name = "ingest"

    def ready(self):
        from ingest.models import Driver
        from ingest.notify import drivers_changed

        post_save.connect(drivers_changed, sender=Driver, dispatch_uid="ingest.drivers_changed.save")
        post_delete.connect(drivers_changed, sender=Driver, dispatch_uid="ingest.drivers_changed.delete")
