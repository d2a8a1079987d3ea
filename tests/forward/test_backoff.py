from hypothesis import given
from hypothesis import strategies as st

from forward.backoff import backoff_delay


def test_it_doubles_up_to_the_cap():
    fixed = [backoff_delay(n, 1.0, 60, rand=lambda: 1.0) for n in range(1, 9)]
    assert fixed == [1, 2, 4, 8, 16, 32, 60, 60]


@given(st.integers(1, 10_000), st.floats(0.001, 10), st.floats(1, 600), st.floats(0, 1))
def test_half_of_each_step_is_fixed_and_half_random(failures, base, cap, r):
    delay = backoff_delay(failures, base, cap, rand=lambda: r)
    step = min(cap, base * 2 ** min(failures - 1, 62))
    assert step / 2 <= delay <= step + 1e-9


def test_a_retry_after_is_a_floor_within_the_cap():
    assert backoff_delay(1, 1.0, 60, retry_after=30, rand=lambda: 0) == 30
    assert backoff_delay(1, 1.0, 60, retry_after=3600, rand=lambda: 0) == 60
