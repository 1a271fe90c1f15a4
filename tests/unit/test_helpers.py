"""tests.helpers.eventually: returns the first truthy value, retries on the
listed exceptions, and fails naming what it waited for."""

import pytest

from tests.helpers import eventually


async def test_returns_the_first_truthy_value_of_a_plain_or_async_function():
    seen = iter([0, None, "", "yes"])
    assert await eventually("a value", lambda: next(seen), interval=0) == "yes"

    async def fn():
        return 42
    assert await eventually("an async value", fn) == 42


async def test_an_assertion_counts_as_not_yet():
    calls = []

    def check():
        calls.append(1)
        assert len(calls) >= 3
        return True
    assert await eventually("three calls", check, interval=0) is True


async def test_it_fails_naming_what_and_the_last_value():
    with pytest.raises(AssertionError, match=r"waiting for the moon \(last: 0\)"):
        await eventually("the moon", lambda: 0, timeout=0, interval=0)


async def test_other_exceptions_end_the_wait_unless_listed():
    def boom():
        raise OSError("refused")
    with pytest.raises(OSError):
        await eventually("a connection", boom, timeout=5)
    with pytest.raises(AssertionError, match="refused"):
        await eventually("a connection", boom, timeout=0, retry_on=(OSError,))
