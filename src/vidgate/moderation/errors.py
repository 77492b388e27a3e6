"""What prompt screening answers a create with.

Each docstring is what the OpenAPI document says about the error on the routes that declare it.
"""

from __future__ import annotations

from vidgate.errors import BadRequest, ServiceUnavailable

# How long a caller refused for a screening outage is asked to wait.
SCREENING_RETRY_AFTER_SECONDS = 30


class PromptRefused(BadRequest):
    """Content screening refused the prompt (the operator's list or the moderation service); no
    task was created and nothing was charged."""

    def __init__(self, category: str) -> None:
        super().__init__(
            f"The prompt was refused by content screening: {category}."
            " Change the prompt and try again; nothing was charged."
        )


class ScreeningUnavailable(ServiceUnavailable):
    """The moderation service prompts are screened by did not answer, and this server refuses
    unscreened prompts; nothing was charged."""

    def __init__(self) -> None:
        super().__init__(
            "Content screening is unavailable right now, so no task was created and nothing"
            " was charged; try again shortly.",
            headers={"Retry-After": str(SCREENING_RETRY_AFTER_SECONDS)},
        )
