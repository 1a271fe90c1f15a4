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


def test_reasons_travel_as_grpc_status_codes_by_name() -> None:
    """pkapi.errors names the gRPC codes without importing grpc; every name
    is a real grpc.StatusCode and the status comes back as the same reason."""
    import grpc

    from pkapi.errors import REASON_CODES, ApiError

    for reason, name in REASON_CODES.items():
        assert isinstance(grpc.StatusCode[name], grpc.StatusCode), reason
        e = ApiError(reason, "m")
        assert e.grpc_code == name
        assert ApiError.from_wire(grpc.StatusCode[name].name, e.wire()) == ApiError(reason, "m")
    assert ApiError("Frobbed", "m").grpc_code == "UNKNOWN"
    # A status without the "[Reason] " prefix gets the code's reason.
    assert ApiError.from_wire("NOT_FOUND", "gone").reason == "NotFound"
    assert ApiError.from_wire("UNKNOWN", "?").reason == "InternalError"
