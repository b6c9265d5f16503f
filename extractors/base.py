"""The seam between the extractor and a language model: chat messages in, constrained JSON text out."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol


class BackendError(Exception):
    """A model call that failed (timeout, server error, model not loadable); it may be retried."""


class Cancelled(Exception):
    """A model call stopped on request (the daemon is stopping); not a failure of the interaction."""


@dataclass(frozen=True)
class Completion:
    """What a model answered, and how fast."""

    text: str
    tokens: int
    seconds: float
    finished: bool = True


class LLMBackend(Protocol):
    """A language model that answers chat messages, with output constrained to a JSON schema."""

    @property
    def model(self) -> str:
        """The model's name, stored with every pattern it produces."""
        ...

    def complete(self, messages: list[dict[str, str]], schema: dict[str, Any] | None, max_tokens: int) -> Completion:
        """Answer the messages; with a schema, the answer is JSON that matches it."""
        ...

    def close(self) -> None:
        """Release the model (its memory, its connections); the backend is not used again."""
        ...
