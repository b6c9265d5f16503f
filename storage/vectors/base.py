"""The vector-store seam: collections of points with payloads, searched by cosine similarity."""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import numpy as np

INTERACTIONS = "interaction-history"
SKILLS = "skills-patterns"
# Skills a re-check found below the quality gate: kept with the reason, never served or merged into.
RETIRED_SKILLS = "skills-retired"
EXAMPLES = "finetune-examples"

# Payload fields tools filter on, per collection, with their index type.
IndexType = Literal["keyword", "float", "integer", "datetime"]
PAYLOAD_INDEXES: dict[str, dict[str, IndexType]] = {
    INTERACTIONS: {"source": "keyword", "kind": "keyword", "user": "keyword", "value_score": "float"},
    SKILLS: {
        "tags": "keyword",
        "name": "keyword",
        "success_rate": "float",
        "value_score": "float",
        "source_users": "keyword",
        "usefulness": "float",
        "usage_count": "integer",
    },
    EXAMPLES: {"source": "keyword"},
    RETIRED_SKILLS: {"source_users": "keyword"},
}
# A vector as a list of floats or a numpy row.
VectorLike = Sequence[float] | np.ndarray[Any, Any]
_NAMESPACE = uuid.UUID("6d1f1c1e-8c51-4c1b-9a8e-5c1d7d2f0b11")


def point_id(*parts: str) -> str:
    """A deterministic point id (UUID5 of content keys), the same on every workstation."""
    return str(uuid.uuid5(_NAMESPACE, "\x1f".join(parts)))


@dataclass
class VectorPoint:
    id: str
    vector: VectorLike
    payload: dict[str, Any] = field(default_factory=dict)


@dataclass
class Hit:
    id: str
    score: float
    payload: dict[str, Any]
    vector: list[float] | None = None


class VectorStore(Protocol):
    """What skilld needs of a vector database."""

    def ensure_collection(self, name: str, dimensions: int) -> None:
        """Create a collection (cosine distance, with its payload indexes) if it does not exist."""
        ...

    def upsert(self, name: str, points: list[VectorPoint]) -> None:
        """Insert or replace points by id."""
        ...

    def search(
        self,
        name: str,
        vector: VectorLike,
        limit: int,
        threshold: float | None = None,
        match: dict[str, str] | None = None,
    ) -> list[Hit]:
        """The nearest points, best first, optionally above a score and with payload fields equal to values."""
        ...

    def retrieve(self, name: str, ids: list[str], with_vectors: bool = False) -> list[Hit]:
        """Points by id (missing ones are left out)."""
        ...

    def delete(self, name: str, ids: list[str]) -> None:
        """Delete points by id."""
        ...

    def count(self, name: str) -> int:
        """Points in a collection."""
        ...

    def scroll(self, name: str, with_vectors: bool = False) -> Iterator[Hit]:
        """Every point of a collection."""
        ...

    def close(self) -> None:
        """Flush and release the store."""
        ...
