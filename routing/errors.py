"""Errors that carry their own HTTP status and OpenAI error type.

Every failure a client can see is one of these; the ingress turns it into
``{"error": {"message", "type", "param", "code"}}`` with ``status_code``.
They cross Ray process boundaries, so they pickle with all their fields.
"""

from __future__ import annotations

from typing import Any


class ServiceError(Exception):
    status_code: int = 500
    error_type: str = "internal_error"
    default_code: str | None = None

    def __init__(self, message: str, *, param: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code if code is not None else self.default_code

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (type(self), self.message, self.__dict__.copy()))

    def to_dict(self) -> dict[str, Any]:
        return {"message": self.message, "type": self.error_type, "param": self.param, "code": self.code}


def _rebuild(cls: type[ServiceError], message: str, state: dict[str, Any]) -> ServiceError:
    err = cls.__new__(cls)
    Exception.__init__(err, message)
    err.__dict__.update(state)
    return err


class InvalidRequest(ServiceError):
    status_code = 400
    error_type = "invalid_request_error"


class Unauthorized(ServiceError):
    status_code = 401
    error_type = "invalid_request_error"


class ModelNotFound(ServiceError):
    status_code = 404
    error_type = "invalid_request_error"
    default_code = "model_not_found"


class ServiceUnavailable(ServiceError):
    """The service cannot take the request now (a full queue, no healthy replica); try again later."""

    status_code = 503
    error_type = "service_unavailable"
    default_code = "overloaded"

    def __init__(self, message: str, *, retry_after_s: float | None = None, code: str | None = None) -> None:
        super().__init__(message, code=code)
        self.retry_after_s = retry_after_s


class RoutingUnavailable(ServiceUnavailable):
    """A router or embedding replica was lost while scoring; the routing step may be tried again."""

    default_code = "replica_unavailable"


class PayloadTooLarge(ServiceError):
    status_code = 413
    error_type = "invalid_request_error"
    default_code = "request_too_large"


class UpstreamError(ServiceError):
    """The upstream LLM (or embedding) API failed or answered with an error.

    ``reason`` names the failure in ``x-route-fallback`` and in the metrics; ``retriable``
    says whether the same upstream may be asked again (429, 5xx, connection errors)."""

    status_code = 502
    error_type = "upstream_error"
    default_code = "upstream_error"
    default_reason = "upstream_error"

    def __init__(
        self,
        message: str,
        *,
        model: str,
        upstream_status: int | None = None,
        reason: str | None = None,
        retriable: bool = False,
        retry_after_s: float | None = None,
        param: str | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(message, param=param, code=code)
        self.model = model
        self.upstream_status = upstream_status
        self.reason = reason or self.default_reason
        self.retriable = retriable
        self.retry_after_s = retry_after_s

    @property
    def counts_against_upstream(self) -> bool:
        """Whether this failure says the upstream is unwell (what the circuit breaker counts);
        a lost replica of ours says nothing about it."""
        return self.reason != "replica_unavailable"


class UpstreamTimeout(UpstreamError):
    status_code = 504
    error_type = "timeout"
    default_code = "upstream_timeout"
    default_reason = "upstream_timeout"


class UpstreamUnconfigured(UpstreamError):
    """The upstream has no endpoint configured (e.g. its base-URL variable is unset)."""

    status_code = 503
    error_type = "service_unavailable"
    default_code = "upstream_unconfigured"
    default_reason = "upstream_unconfigured"

    @property
    def counts_against_upstream(self) -> bool:
        return False


class UpstreamRejected(UpstreamError):
    """The upstream judged the request itself invalid (its 400/422): the client's fault, not ours."""

    status_code = 400
    error_type = "invalid_request_error"
    default_code = "upstream_rejected"
    default_reason = "upstream_rejected"

    @property
    def counts_against_upstream(self) -> bool:
        return False


class CircuitOpen(UpstreamError):
    """The upstream failed too often lately; it is skipped until its cooldown ends."""

    default_code = "upstream_circuit_open"
    default_reason = "circuit_open"

    @property
    def counts_against_upstream(self) -> bool:
        return False
