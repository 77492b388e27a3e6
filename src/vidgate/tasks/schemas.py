"""Request and response bodies of the video and task endpoints (docs/api.md §3.1, §3.3, §4)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, PrivateAttr, StrictBool

from vidgate.validation import NoNul

MAX_URL_LENGTH = 2048


def _http_url(value: str) -> str:
    """An absolute http(s) URL with a host and no credentials (reachability is checked later)."""
    if len(value) > MAX_URL_LENGTH:
        raise ValueError(f"URL longer than {MAX_URL_LENGTH} characters")
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"not a valid URL ({exc})") from None
    if parts.scheme not in ("http", "https"):
        raise ValueError("must be an http or https URL")
    if not parts.hostname:
        raise ValueError("URL has no host")
    if parts.username is not None or parts.password is not None:
        raise ValueError("URL must not contain a user name or password")
    if port == 0:
        raise ValueError("URL port must be 1-65535")
    if any(c.isspace() or ord(c) < 32 for c in value):
        raise ValueError("URL must not contain spaces or control characters")
    return value


HttpUrlStr = Annotated[
    str, Field(min_length=1, max_length=MAX_URL_LENGTH), AfterValidator(_http_url)
]
Mode = Literal["wan-std", "wan-pro"]
AspectRatio = Literal["landscape", "portrait"]
Quality = Literal["standard", "hd"]
Prompt = Annotated[str, Field(min_length=1, max_length=5000), NoNul]
# What a user's cancel came to: still asking the vendor, stopped (credits back), or refused by the
# vendor (the task runs on and is charged for what it makes; a failure is still refunded).
CancelOutcome = Literal["pending", "canceled", "not_cancelable"]
_CANCEL_OUTCOME_DOC = (
    "What a cancel came to: null (none asked, or the task ended another way first), `pending`"
    " (the provider has not answered yet), `canceled` (stopped; credits back) or"
    " `not_cancelable` (the provider cannot stop it: it finishes and is charged for what it"
    " makes; a failure is still refunded)."
)
_CANCEL_MESSAGE_DOC = "The cancel outcome in a sentence, for people."


class _Body(BaseModel):
    model_config = ConfigDict(extra="ignore")


ModelId = Annotated[
    str | None,
    Field(
        min_length=1,
        max_length=64,
        description="A model of this kind from GET /api/videos/models; default: the kind's"
        " default model",
    ),
]


class AnimateRequest(_Body):
    image_url: HttpUrlStr
    video_url: HttpUrlStr
    check_image: StrictBool = True
    mode: Mode = "wan-std"
    webhook_url: HttpUrlStr | None = None
    # Additions to the base API (docs/api.md §1.4):
    model: ModelId = None


class TextToVideoRequest(_Body):
    prompt: Prompt
    aspect_ratio: AspectRatio = "landscape"
    quality: Quality = "standard"
    webhook_url: HttpUrlStr | None = None
    # Additions to the base API (docs/api.md §1.4):
    model: ModelId = None
    duration: int | None = Field(
        default=None,
        ge=1,
        le=60,
        description="Seconds of video, one of the model's durations; default: the model's"
        " default (the price scales with it)",
    )


class ImageToVideoRequest(TextToVideoRequest):
    image_urls: Annotated[list[HttpUrlStr], Field(min_length=1, max_length=10)]


class CreateTaskResponse(BaseModel):
    success: bool = True
    task_id: str
    message: str
    credits_estimated: int
    estimated_time: int | None = None
    # Additions to the base API (docs/api.md §1.4):
    status: str
    billing_mode: Literal["metered", "prepaid"]


class TaskByIdView(BaseModel):
    """A task as the by-id endpoints show it (`GET /api/tasks/{id}`, `/api/videos/tasks/{id}`,
    the event stream). Its owner — a Bearer token or a personal key — sees everything; a client
    key alone (public: the web app's configuration serves it) sees only progress and outcome,
    with the owner, the inputs and the money null."""

    task_id: str
    user_id: str | None = Field(description="null when read with a client key alone")
    task_type: str
    status: str
    progress: int
    result_url: str | None = None
    error_message: str | None = None
    created_at: datetime
    updated_at: datetime
    completed_at: datetime | None = None
    # Additions to the base API (docs/api.md §1.4):
    error_code: str | None = None
    billing_mode: Literal["metered", "prepaid"] | None = None
    credits_estimated: int | None = None
    credits_reserved: int | None = None
    credits_charged: int | None = None
    credits_refunded: int | None = None
    estimated_time: int
    result_duration_seconds: float | None = None
    inputs: dict[str, Any] | None = None
    retry_of: str | None = None
    model: str | None = Field(default=None, description="The catalog model the task is for")
    cancel_requested: bool = False
    cancel_outcome: CancelOutcome | None = Field(default=None, description=_CANCEL_OUTCOME_DOC)
    cancel_message: str | None = Field(default=None, description=_CANCEL_MESSAGE_DOC)
    result_expired: bool = Field(
        default=False,
        description="The video was deleted when its retention period ended; result_url is null",
    )
    result_expired_at: datetime | None = Field(
        default=None, description="When the video was deleted (null while it is kept)"
    )
    labelled: bool = Field(
        default=False,
        description="The result carries vidgate's AI-generated labels (AIGC metadata, visible"
        " mark, C2PA manifest, as the server is set up); see GET /api/tasks/{id}/provenance",
    )


class TaskView(TaskByIdView):
    """A task as its owner sees it: every field filled in."""

    user_id: str
    billing_mode: Literal["metered", "prepaid"]
    credits_estimated: int
    credits_reserved: int
    credits_charged: int
    credits_refunded: int
    inputs: dict[str, Any]
    # Views are cached per task and read often with a client key: its reduction is made once.
    _for_client_key: TaskByIdView | None = PrivateAttr(default=None)

    def for_client_key(self) -> TaskByIdView:
        """Only what following a task needs: its kind, progress and outcome."""
        reduced = self._for_client_key  # one read: a private attribute is a pydantic lookup
        if reduced is None:
            reduced = self._for_client_key = self._reduced()
        return reduced

    def _reduced(self) -> TaskByIdView:
        return TaskByIdView(
            task_id=self.task_id,
            user_id=None,
            task_type=self.task_type,
            status=self.status,
            progress=self.progress,
            result_url=self.result_url,
            error_message=self.error_message,
            created_at=self.created_at,
            updated_at=self.updated_at,
            completed_at=self.completed_at,
            error_code=self.error_code,
            estimated_time=self.estimated_time,
            model=self.model,
            result_duration_seconds=self.result_duration_seconds,
            cancel_requested=self.cancel_requested,
            cancel_outcome=self.cancel_outcome,
            cancel_message=self.cancel_message,
            result_expired=self.result_expired,
            result_expired_at=self.result_expired_at,
            labelled=self.labelled,
        )


class TaskList(BaseModel):
    tasks: list[TaskView]
    total: int
    page: int
    page_size: int


class CancelResponse(BaseModel):
    message: str = "Task cancellation requested"
    status: str
    # Additions to the base API (docs/api.md §1.4):
    cancel_outcome: CancelOutcome | None = Field(default=None, description=_CANCEL_OUTCOME_DOC)
    cancel_message: str | None = Field(default=None, description=_CANCEL_MESSAGE_DOC)


def describe_cancel(
    status: str, requested_at: datetime | None, refused_at: datetime | None
) -> tuple[CancelOutcome | None, str | None]:
    """What a user's cancel came to (`cancel_outcome`), and the sentence that tells them, so a
    task the vendor could not stop never reads as canceled."""
    if requested_at is None:
        return None, None
    if status == "CANCELED":
        return "canceled", "Canceled before the provider charged for it; its credits came back."
    if refused_at is not None:
        if status in ("PENDING", "RUNNING"):
            message = (
                "The provider cannot stop this task once it is running: it will finish and be"
                " charged for what it makes (if it fails, its credits come back)."
            )
        elif status == "SUCCEEDED":
            message = (
                "The provider could not stop this task, so it ran to the end and was charged"
                " for its video."
            )
        else:
            message = (
                "The provider could not stop this task; it then ended without a video and its"
                " credits came back."
            )
        return "not_cancelable", message
    if status in ("PENDING", "RUNNING"):
        return (
            "pending",
            "Cancellation requested; waiting for the provider to confirm it stopped the task.",
        )
    return None, None  # it ended another way (failed, timed out) before the vendor answered


class RetryResponse(BaseModel):
    message: str = "Task retry initiated"
    new_task_id: str
    credits_estimated: int


# --- the console (`/api/admin/tasks`) ----------------------------------------------------------


class AttemptOut(BaseModel):
    channel: str
    adapter: str
    outcome: str
    error_code: str | None
    error_message: str | None
    upstream_id: str | None
    started_at: datetime
    finished_at: datetime | None


class OperatorTaskView(TaskView):
    """A task as operators see it: the owner's view plus where it ran and how it got there."""

    channel: str | None = None
    provider: str
    upstream_id: str | None = None
    upstream_status: str | None = None
    upstream_request: dict[str, Any] = {}  # what vidgate asks a vendor for (before channel fields)
    attempts: list[AttemptOut] = []


class OperatorTaskList(BaseModel):
    tasks: list[OperatorTaskView]
    total: int
    page: int
    page_size: int
