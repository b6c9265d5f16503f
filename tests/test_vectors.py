"""Both vector stores behind one interface: Qdrant Edge (embedded) and qdrant-client (server; local mode here)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from storage.vectors.base import INTERACTIONS, SKILLS, VectorPoint, VectorStore, point_id
from storage.vectors.edge import EdgeVectorStore
from storage.vectors.server import ServerVectorStore


def _open(kind: str, root: Path) -> VectorStore:
    return EdgeVectorStore(root / "edge") if kind == "edge" else ServerVectorStore(path=str(root / "server"))


@pytest.fixture(params=["edge", "server"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[VectorStore]:
    vectors = _open(request.param, tmp_path)
    vectors.ensure_collection(SKILLS, 4)
    yield vectors
    vectors.close()


def _points() -> list[VectorPoint]:
    return [
        VectorPoint(point_id("a"), [1, 0, 0, 0], {"name": "a", "tags": ["git"]}),
        VectorPoint(point_id("b"), [0.9, 0.1, 0, 0], {"name": "b", "tags": ["python"]}),
        VectorPoint(point_id("c"), [0, 0, 1, 0], {"name": "c", "tags": ["git"]}),
    ]


def test_search_returns_the_nearest_first_with_cosine_scores(store: VectorStore) -> None:
    store.upsert(SKILLS, _points())
    hits = store.search(SKILLS, [1, 0, 0, 0], 3)
    assert [h.payload["name"] for h in hits] == ["a", "b", "c"]
    assert hits[0].score == pytest.approx(1.0, abs=1e-5)
    assert [h.payload["name"] for h in store.search(SKILLS, [1, 0, 0, 0], 3, threshold=0.5)] == ["a", "b"]
    assert [h.payload["name"] for h in store.search(SKILLS, [1, 0, 0, 0], 3, match={"tags": "git"})] == ["a", "c"]


def test_upserting_the_same_ids_again_creates_no_duplicates(store: VectorStore) -> None:
    store.upsert(SKILLS, _points())
    store.upsert(SKILLS, [VectorPoint(p.id, p.vector, {**p.payload, "seen": 2}) for p in _points()])
    assert store.count(SKILLS) == 3
    stored = {h.id: h.payload for h in store.scroll(SKILLS)}
    assert sorted(stored) == sorted(point_id(name) for name in "abc")
    assert all(payload["seen"] == 2 for payload in stored.values())  # the second upsert replaced the first


def test_point_ids_are_uuid5_of_the_content_key_the_same_on_every_workstation() -> None:
    # Pinned: a changed namespace or key layout would duplicate every point of an existing or shared store.
    assert point_id("a") == "595bbfd8-2449-54a0-b724-3cb35bd6824e"
    assert point_id("interaction", "continue:abc") == "07d9b7c9-2136-5f6e-bb87-6b68841308c0"
    assert uuid.UUID(point_id("b")).version == 5
    assert len({point_id("a"), point_id("b"), point_id("a", "b"), point_id("interaction", "a")}) == 4


def test_retrieve_scroll_and_delete(store: VectorStore) -> None:
    store.upsert(SKILLS, _points())
    (hit,) = store.retrieve(SKILLS, [point_id("b")], with_vectors=True)
    assert hit.payload["name"] == "b" and hit.vector is not None and len(hit.vector) == 4
    assert sorted(h.payload["name"] for h in store.scroll(SKILLS)) == ["a", "b", "c"]
    store.delete(SKILLS, [point_id("b")])
    assert store.count(SKILLS) == 2 and store.retrieve(SKILLS, [point_id("b")]) == []


@pytest.mark.parametrize("kind", ["edge", "server"])
def test_collections_survive_a_reopen_with_their_payload_indexes(kind: str, tmp_path: Path) -> None:
    first = _open(kind, tmp_path)
    first.ensure_collection(INTERACTIONS, 4)
    first.upsert(INTERACTIONS, [VectorPoint(point_id("x"), [0, 1, 0, 0], {"source": "aidb"})])
    first.close()
    second = _open(kind, tmp_path)
    second.ensure_collection(INTERACTIONS, 4)
    assert second.count(INTERACTIONS) == 1
    second.close()


def test_edge_collections_have_payload_indexes_for_the_fields_tools_filter_on(tmp_path: Path) -> None:
    # qdrant-client's local mode has no payload indexes, so only the embedded store can show them here.
    store = EdgeVectorStore(tmp_path)
    store.ensure_collection(INTERACTIONS, 4)
    store.ensure_collection(SKILLS, 4)
    assert {"source", "kind", "user", "value_score"} <= set(store.shards[INTERACTIONS].info().payload_schema)
    assert {"tags", "name", "success_rate"} <= set(store.shards[SKILLS].info().payload_schema)
    store.close()
