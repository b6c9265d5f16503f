"""Choosing the vector store from configuration: a Qdrant URL, or Qdrant Edge under the home."""

from __future__ import annotations

from pathlib import Path

from storage.vectors.base import VectorStore


def open_vector_store(home: Path, url: str | None, api_key: str | None) -> VectorStore:
    """Qdrant server at `url` when configured, else the embedded Qdrant Edge under `<home>/vectors`."""
    if url:
        from storage.vectors.server import ServerVectorStore

        return ServerVectorStore(url=url, api_key=api_key)
    from storage.vectors.edge import EdgeVectorStore

    return EdgeVectorStore(home / "vectors")
