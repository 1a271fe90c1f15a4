"""pkapi.errors' predicates (client-go's errors.IsNotFound and friends)."""

import pytest

from pkapi import errors


@pytest.mark.parametrize("pred,reason", [
    (errors.is_not_found, "NotFound"), (errors.is_conflict, "Conflict"),
    (errors.is_already_exists, "AlreadyExists"), (errors.is_expired, "Expired"),
])
def test_each_predicate_matches_its_reason_only(pred, reason):
    assert pred(errors.ApiError(reason, "x"))
    assert not pred(errors.ApiError("InternalError", "x"))
    assert not pred(ValueError(reason))
    assert not pred(None)
