"""A forwarding run raises the collector's threshold and gives the worker its own back."""

import gc

import pytest

from forward.gc_tuning import RUN_THRESHOLD, fewer_gc_passes


@pytest.fixture
def default_thresholds():
    before = gc.get_threshold()
    gc.set_threshold(700, 10, 10)
    yield
    gc.set_threshold(*before)


def test_thresholds_are_raised_inside_and_restored_after(default_thresholds):
    with fewer_gc_passes():
        assert gc.get_threshold() == (RUN_THRESHOLD, 10, 10)
    assert gc.get_threshold() == (700, 10, 10)


def test_restored_when_the_run_fails(default_thresholds):
    with pytest.raises(RuntimeError), fewer_gc_passes():
        raise RuntimeError("send failed")
    assert gc.get_threshold() == (700, 10, 10)


def test_a_process_already_tuned_higher_is_not_lowered():
    before = gc.get_threshold()
    gc.set_threshold(RUN_THRESHOLD * 5, 20, 30)
    try:
        with fewer_gc_passes():
            assert gc.get_threshold() == (RUN_THRESHOLD * 5, 20, 30)
        assert gc.get_threshold() == (RUN_THRESHOLD * 5, 20, 30)
    finally:
        gc.set_threshold(*before)
