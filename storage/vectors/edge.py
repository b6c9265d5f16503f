"""Qdrant Edge: Qdrant's own engine in process (HNSW, WAL), one shard per collection under the home."""

from __future__ import annotations

import errno
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from storage.vectors.base import PAYLOAD_INDEXES, Hit, VectorLike, VectorPoint


def _schema(kind: str) -> Any:
    from qdrant_edge import PayloadSchemaType

    return {
        "keyword": PayloadSchemaType.Keyword,
        "float": PayloadSchemaType.Float,
        "integer": PayloadSchemaType.Integer,
        "datetime": PayloadSchemaType.Datetime,
    }[kind]


def _filter(match: dict[str, str] | None) -> Any:
    if not match:
        return None
    from qdrant_edge import FieldCondition, Filter, MatchValue

    return Filter(must=[FieldCondition(key=k, match=MatchValue(v)) for k, v in match.items()])


# Qdrant Edge writes through memory-mapped, sparse files (its WAL segments are 32 MB): on a full filesystem a
# write into such a page is not an error but SIGBUS, which kills the process (seen: a 3 MB tmpfs home). So a
# write needs this much free space first, or it fails as a full disk does and the stage retries later.
MIN_FREE_BYTES = 64 * 2**20


def ensure_room(path: Path) -> None:
    """Raise ENOSPC unless the filesystem holding `path` has MIN_FREE_BYTES free."""
    probe = path if path.exists() else path.parent
    if shutil.disk_usage(probe).free < MIN_FREE_BYTES:
        raise OSError(errno.ENOSPC, "No space left on device (Qdrant Edge needs 64 MB free)", str(path))


class EdgeVectorStore:
    """Shards at `<root>/<collection>/`; the process that opens them holds them (one process at a time)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.shards: dict[str, Any] = {}
        self._lock = threading.RLock()

    def ensure_collection(self, name: str, dimensions: int) -> None:
        from qdrant_edge import Distance, EdgeConfig, EdgeShard, EdgeVectorParams, UpdateOperation

        with self._lock:
            if name in self.shards:
                return
            path = self.root / name
            ensure_room(self.root)
            config = EdgeConfig(vectors=EdgeVectorParams(size=dimensions, distance=Distance.Cosine))
            if path.exists() and any(path.iterdir()):
                shard = EdgeShard.load(str(path))
            else:
                path.mkdir(parents=True, exist_ok=True, mode=0o700)
                shard = EdgeShard.create(str(path), config)
            existing = set(shard.info().payload_schema)
            for field, kind in PAYLOAD_INDEXES.get(name, {}).items():
                if field not in existing:
                    shard.update(UpdateOperation.create_field_index(field, _schema(kind)))
            self.shards[name] = shard

    def _shard(self, name: str) -> Any:
        shard = self.shards.get(name)
        if shard is None:
            raise KeyError(f"collection {name} is not open")
        return shard

    def upsert(self, name: str, points: list[VectorPoint]) -> None:
        from qdrant_edge import Point, UpdateOperation

        if points:
            edge_points = [Point(p.id, [float(x) for x in p.vector], p.payload) for p in points]
            with self._lock:
                ensure_room(self.root)
                self._shard(name).update(UpdateOperation.upsert_points(edge_points))

    def search(
        self,
        name: str,
        vector: VectorLike,
        limit: int,
        threshold: float | None = None,
        match: dict[str, str] | None = None,
    ) -> list[Hit]:
        from qdrant_edge import Query, QueryRequest

        request = QueryRequest(
            limit=limit,
            query=Query.Nearest([float(x) for x in vector]),
            with_payload=True,
            score_threshold=threshold,
            filter=_filter(match),
        )
        with self._lock:
            found = self._shard(name).query(request)
        return [Hit(str(p.id), float(p.score), dict(p.payload or {})) for p in found]

    def retrieve(self, name: str, ids: list[str], with_vectors: bool = False) -> list[Hit]:
        with self._lock:
            records = self._shard(name).retrieve(ids, with_payload=True, with_vector=with_vectors)
        return [
            Hit(str(r.id), 1.0, dict(r.payload or {}), list(r.vector) if with_vectors and r.vector else None)
            for r in records
        ]

    def delete(self, name: str, ids: list[str]) -> None:
        from qdrant_edge import UpdateOperation

        if ids:
            with self._lock:
                ensure_room(self.root)
                self._shard(name).update(UpdateOperation.delete_points(list[Any](ids)))

    def count(self, name: str) -> int:
        from qdrant_edge import CountRequest

        with self._lock:
            return int(self._shard(name).count(CountRequest(exact=True)))

    def scroll(self, name: str, with_vectors: bool = False) -> Iterator[Hit]:
        from qdrant_edge import ScrollRequest

        offset = None
        while True:
            with self._lock:
                records, offset = self._shard(name).scroll(
                    ScrollRequest(offset=offset, limit=256, with_payload=True, with_vector=with_vectors)
                )
            for r in records:
                yield Hit(str(r.id), 1.0, dict(r.payload or {}), list(r.vector) if with_vectors and r.vector else None)
            if offset is None:
                return

    def optimize(self) -> None:
        """Build the HNSW indexes of grown segments (index upkeep)."""
        with self._lock:
            ensure_room(self.root)
            for shard in self.shards.values():
                shard.optimize()

    def close(self) -> None:
        with self._lock:
            for shard in self.shards.values():
                shard.flush()
                shard.close()
            self.shards.clear()
