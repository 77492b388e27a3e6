"""One result to label: what its labels say about it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class LabelJob:
    """The result's task, the catalog model that made it (id and display name), its channel."""

    task_id: str
    model_id: str
    model_name: str
    channel: str | None
