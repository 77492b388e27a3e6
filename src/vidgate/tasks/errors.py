"""What creating, reading, canceling and retrying a task can fail on.

Each docstring is what the OpenAPI document says about the error on the routes that declare it.
"""

from __future__ import annotations

from vidgate.errors import (
    BadRequest,
    Conflict,
    NotFound,
    ServiceUnavailable,
    TooManyRequests,
    Unprocessable,
)


class TaskNotFound(NotFound):
    """There is no task with this id, or it is not the caller's."""

    detail = "Task not found"


class TaskAlreadyFinished(BadRequest):
    """The task has finished already: only a pending or running task can be canceled."""

    def __init__(self, status: str) -> None:
        super().__init__(f"Task is already {status}; only pending or running tasks can be canceled")


class TaskNotRetryable(BadRequest):
    """The task is not FAILED, TIMEOUT or CANCELED, the states a task can be retried from."""

    def __init__(self, status: str) -> None:
        super().__init__(f"Task is {status}; only FAILED, TIMEOUT or CANCELED tasks can be retried")


class TooManyActiveTasks(TooManyRequests):
    """The account has as many tasks pending or running as it may have at once."""

    def __init__(self, limit: int) -> None:
        super().__init__(
            f"Too many active tasks: at most {limit} may be pending or running at once."
            " Wait for one to finish or cancel one.",
            retry_after=30,
        )


class WebhookUrlNotHttps(Unprocessable):
    """The webhook_url is not an https URL (plain http is accepted in development only)."""

    detail = "webhook_url must be an https URL"


class InputRejected(BadRequest):
    """An input URL is not media its field accepts: a file outside the vendor's limits, not an
    image or video of the right kind, not an upload of the caller's, or a URL that cannot be
    fetched."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")


class InputOutsideLimits(InputRejected):
    """An input's type, size, dimensions, aspect ratio or length is outside the vendor's limits."""


class InputNotMedia(InputRejected):
    """A fetched input is not a readable image or video of the kind its field takes."""


class InputUploadNotFound(InputRejected):
    """An input URL points into vidgate's media but at no upload of the caller's."""

    def __init__(self, field: str) -> None:
        super().__init__(field, "no uploaded file at this URL")


class InputUploadExpired(InputRejected):
    """An input URL names an upload of the caller's that was deleted when its retention ended."""

    def __init__(self, field: str) -> None:
        super().__init__(field, "this upload has expired and was deleted; upload the file again")


class InputUploadWrongType(InputRejected):
    """An input URL names an upload of the other type (a video where an image is wanted)."""

    def __init__(self, field: str, uploaded: str, wanted: str) -> None:
        super().__init__(field, f"the uploaded file is a {uploaded}, not a {wanted}")


class InputUrlRefused(InputRejected):
    """An input URL is one vidgate does not fetch (a private address, or a scheme or port not
    allowed)."""


class InputFetchFailed(InputRejected):
    """An input URL could not be fetched (no answer, an error status, or a timeout)."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(field, f"could not fetch the URL ({reason})")


class TooManyFetchesForAccount(TooManyRequests):
    """The account already has as many remote input files being fetched as it may at once."""

    def __init__(self, limit: int) -> None:
        super().__init__(
            f"At most {limit} remote files are fetched for one account at a time; wait for the"
            " others, or upload the file",
            retry_after=5,
        )


class RemoteFetchesBusy(ServiceUnavailable):
    """This server is fetching as many remote input files as it can; try again shortly."""

    detail = "Too many remote files are being fetched; try again shortly"

    def __init__(self) -> None:
        super().__init__(headers={"Retry-After": "10"})


class IdempotencyKeyMalformed(BadRequest):
    """The Idempotency-Key header is empty, too long, or not printable ASCII."""

    def __init__(self, max_length: int) -> None:
        super().__init__(
            f"Idempotency-Key must be 1-{max_length} printable ASCII characters (a UUID is ideal)"
        )


class IdempotencyKeyInFlight(Conflict):
    """A request with the same Idempotency-Key is still being processed."""

    def __init__(self, *, retry: bool = False) -> None:
        detail = "A request with this Idempotency-Key is still being processed"
        super().__init__(detail + "; retry" if retry else detail)


class IdempotencyKeyReused(Unprocessable):
    """The Idempotency-Key was used before with a different request (method, path or body)."""

    detail = "This Idempotency-Key was already used with a different request; use a new key"


class ModelNotOffered(Unprocessable):
    """The model is not one of the catalog's models of this kind, or is no longer offered."""


class OutsideModelLimits(Unprocessable):
    """The request asks for more than its model offers: a longer prompt, another duration or
    aspect ratio."""
