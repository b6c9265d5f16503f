"""A Qdrant server (or cluster) through qdrant-client; its local mode serves the tests of this path."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from storage.vectors.base import PAYLOAD_INDEXES, Hit, VectorLike, VectorPoint


class ServerVectorStore:
    """Collections on a Qdrant server at a URL (API key supported), or in qdrant-client's local mode."""

    def __init__(
        self, url: str | None = None, api_key: str | None = None, path: str | None = None, timeout: float = 30.0
    ) -> None:
        from qdrant_client import QdrantClient

        if path is not None:
            self.client = QdrantClient(path=path)
        else:
            self.client = QdrantClient(url=url, api_key=api_key, timeout=int(timeout))
        self.ready: set[str] = set()

    def ensure_collection(self, name: str, dimensions: int) -> None:
        from qdrant_client import models

        if name in self.ready:
            return
        if not self.client.collection_exists(name):
            self.client.create_collection(
                name, vectors_config=models.VectorParams(size=dimensions, distance=models.Distance.COSINE)
            )
        kinds = {
            "keyword": models.PayloadSchemaType.KEYWORD,
            "float": models.PayloadSchemaType.FLOAT,
            "integer": models.PayloadSchemaType.INTEGER,
            "datetime": models.PayloadSchemaType.DATETIME,
        }
        indexed = self.client.get_collection(name).payload_schema or {}
        for field, kind in PAYLOAD_INDEXES.get(name, {}).items():
            if field not in indexed:  # a collection made by an older skilld gains the newer indexes
                self.client.create_payload_index(name, field, field_schema=kinds[kind])
        self.ready.add(name)

    def upsert(self, name: str, points: list[VectorPoint]) -> None:
        from qdrant_client import models

        if points:
            self.client.upsert(
                name,
                points=[
                    models.PointStruct(id=p.id, vector=[float(x) for x in p.vector], payload=p.payload) for p in points
                ],
            )

    def search(
        self,
        name: str,
        vector: VectorLike,
        limit: int,
        threshold: float | None = None,
        match: dict[str, str] | None = None,
    ) -> list[Hit]:
        from qdrant_client import models

        query_filter = None
        if match:
            query_filter = models.Filter(
                must=[models.FieldCondition(key=k, match=models.MatchValue(value=v)) for k, v in match.items()]
            )
        found = self.client.query_points(
            name,
            query=[float(x) for x in vector],
            limit=limit,
            with_payload=True,
            score_threshold=threshold,
            query_filter=query_filter,
        ).points
        return [Hit(str(p.id), float(p.score), dict(p.payload or {})) for p in found]

    def retrieve(self, name: str, ids: list[str], with_vectors: bool = False) -> list[Hit]:
        records = self.client.retrieve(name, ids=ids, with_payload=True, with_vectors=with_vectors)
        return [
            Hit(str(r.id), 1.0, dict(r.payload or {}), _vector(r.vector) if with_vectors else None) for r in records
        ]

    def delete(self, name: str, ids: list[str]) -> None:
        from qdrant_client import models

        if ids:
            self.client.delete(name, points_selector=models.PointIdsList(points=list(ids)))

    def count(self, name: str) -> int:
        return int(self.client.count(name, exact=True).count)

    def scroll(self, name: str, with_vectors: bool = False) -> Iterator[Hit]:
        offset: Any = None
        while True:
            records, offset = self.client.scroll(
                name, limit=256, offset=offset, with_payload=True, with_vectors=with_vectors
            )
            for r in records:
                yield Hit(str(r.id), 1.0, dict(r.payload or {}), _vector(r.vector) if with_vectors else None)
            if offset is None:
                return

    def close(self) -> None:
        self.client.close()


def _vector(value: Any) -> list[float] | None:
    if isinstance(value, list):
        return [float(x) for x in value]
    return None
