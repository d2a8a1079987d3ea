"""Named actors for tenancy tests: alice in tenant A, bob in A and B, eve only in B."""

import pytest
from django.contrib.auth.models import User

from ingest.models import Driver, Membership, Tenant


class Actors:
    def __init__(self):
        self.tenant_a = Tenant.objects.create(slug="tenant-a", name="Tenant A")
        self.tenant_b = Tenant.objects.create(slug="tenant-b", name="Tenant B")
        self.alice = User.objects.create_user("alice", password="alice-password")
        self.bob = User.objects.create_user("bob", password="bob-password")
        self.eve = User.objects.create_user("eve", password="eve-password")
        self.admin = User.objects.create_superuser("root", password="root-password")
        Membership.objects.create(user=self.alice, tenant=self.tenant_a, role="admin")
        Membership.objects.create(user=self.bob, tenant=self.tenant_a)
        Membership.objects.create(user=self.bob, tenant=self.tenant_b)
        Membership.objects.create(user=self.eve, tenant=self.tenant_b)


@pytest.fixture
def actors(transactional_db):
    return Actors()


def make_driver(kind: str, bind: str, tenant: Tenant | None = None, **options) -> tuple[Driver, str]:
    """A saved driver and its clear token (shown once, like the admin does)."""
    driver = Driver(
        name=f"{kind}-{Driver.objects.count() + 1}", kind=kind, bind=bind, tenant=tenant, options=options
    )
    token = driver.set_new_token()
    driver.save()
    return driver, token
