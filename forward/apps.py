from django.apps import AppConfig
from django.db.models.signals import post_save


def _create_state(sender, instance, created, raw=False, **kwargs):
    if created and not raw:
        from forward.state import create_state

        create_state(instance)


class ForwardConfig(AppConfig):
    name = "forward"
    verbose_name = "Forwarding"

    def ready(self):
        from forward.models import Target

        post_save.connect(_create_state, sender=Target, dispatch_uid="forward.create_state")
