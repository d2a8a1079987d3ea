import pytest

from tests.forward.cls_standin import ClsStandIn
from tests.forward.writers import close_writers


@pytest.fixture
def standin():
    server = ClsStandIn().start()
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def _close_writers():
    yield
    close_writers()
