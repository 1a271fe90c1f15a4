"""RetryDelay (pkapi/client/retry.py): doubling to the cap, jitter within
its bound, reset after a success; randomness injected."""

import pytest

from pkapi.client.retry import RetryDelay


def test_doubles_to_the_cap_without_jitter() -> None:
    d = RetryDelay(0.1, 1.0, rand=lambda: 0.0)
    assert [round(d.next(), 3) for _ in range(6)] == [0.1, 0.2, 0.4, 0.8, 1.0, 1.0]
    assert d.failures == 6


def test_jitter_stretches_each_delay_by_at_most_its_share() -> None:
    d = RetryDelay(1.0, 8.0, jitter=0.2, rand=lambda: 1.0)
    assert [round(d.next(), 3) for _ in range(5)] == [1.2, 2.4, 4.8, 9.6, 9.6]
    half = RetryDelay(1.0, 8.0, jitter=0.2, rand=lambda: 0.5)
    assert half.next() == pytest.approx(1.1)


def test_two_clients_draw_different_delays() -> None:
    draws = iter([0.0, 0.9])
    a = RetryDelay(1.0, 5.0, rand=lambda: next(draws))
    b = RetryDelay(1.0, 5.0, rand=lambda: next(draws))
    assert a.next() != b.next()


def test_reset_starts_over() -> None:
    d = RetryDelay(0.2, 5.0, rand=lambda: 0.0)
    d.next(), d.next(), d.next()
    d.reset()
    assert d.failures == 0 and d.next() == pytest.approx(0.2)


@pytest.mark.parametrize("args", [(0, 1), (2, 1), (0.1, 1, -0.1)])
def test_bad_bounds_are_refused(args: tuple[float, ...]) -> None:
    with pytest.raises(ValueError):
        RetryDelay(*args)
