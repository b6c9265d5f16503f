"""The learning stages on real embeddings and Qdrant Edge: scores, the queue, skills, the dataset."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest

from daemon.app import Skilld
from daemon.config import Settings
from extractors.base import BackendError, Completion
from extractors.extractor import Extractor
from storage.datasets import read_records
from tests.helpers import rows, write_lines

pytestmark = pytest.mark.slow

CHAT_DIR = ("dev_data", "0.2.0")


def chats(telemetry: Path, items: list[tuple[str, str, bool | None]], start: int = 0) -> None:
    """Continue chats (and their thumbs) in the telemetry directory."""
    chat_lines, feedback_lines = [], []
    for i, (query, answer, thumb) in enumerate(items, start):
        base = {
            "eventName": "chatInteraction",
            "schema": "0.2.0",
            "timestamp": "2026-11-01T10:00:00Z",
            "userId": "dev",
            "sessionId": f"s{i}",
            "prompt": query,
            "completion": answer,
        }
        chat_lines.append(base)
        if thumb is not None:
            feedback_lines.append({**base, "eventName": "chatFeedback", "feedback": thumb})
    write_lines(telemetry.joinpath(*CHAT_DIR, "chatInteraction.jsonl"), chat_lines)
    write_lines(telemetry.joinpath(*CHAT_DIR, "chatFeedback.jsonl"), feedback_lines)


GOOD = [
    (
        "How do I reverse a list in Python without changing the original?",
        "Use slicing: `ys = xs[::-1]` returns a new reversed list, and the original stays as it was.",
    ),
    (
        "How do I make a systemd user service restart when it crashes?",
        "Add `Restart=on-failure` to the [Service] section, then `systemctl --user daemon-reload`.",
    ),
]


class Scripted:
    """A stand-in model (these tests are about the stages around it; tests/test_models.py runs the real one)."""

    model = "scripted"

    def __init__(self, fail: int = 0) -> None:
        self.fail = fail
        self.calls = 0

    def complete(self, messages: list[dict[str, str]], schema: dict[str, Any] | None, max_tokens: int) -> Completion:
        self.calls += 1
        if self.calls <= self.fail:
            raise BackendError("model server unreachable")
        question = messages[-1]["content"].split("<<<")[1].split(">>>")[0].strip()
        return Completion(
            json.dumps(
                {
                    "name": question[:50],
                    "description": f"How to answer: {question}"[:300],
                    "prerequisites": [],
                    "steps": ["Read the answer", "Apply it"],
                    "tags": ["howto"],
                    "example": "",
                }
            ),
            20,
            0.01,
        )

    def close(self) -> None:
        pass


@pytest.fixture
def app(settings: Settings, embedder: Any) -> Iterator[Skilld]:
    application = Skilld(settings)
    application.learner._embedder = embedder
    application.learner._extractor = Extractor(Scripted())
    yield application
    application.close()


def test_high_value_interactions_become_skills_and_examples_low_value_ones_do_not(app: Skilld, telemetry: Path) -> None:
    chats(telemetry, [*[(q, a, True) for q, a in GOOD], ("what time is it", "I do not know.", None)])
    app.ingest([telemetry], learn=True)
    status = app.status()
    assert (status["interactions"], status["scored"], status["high_value"]) == (3, 3, 2)
    assert (status["skills"], status["dataset_examples"], status["extracted"]) == (2, 2, 2)
    assert status["pending_extractions"] == 0 and status["parked_extractions"] == 0
    records = read_records(app.home / "datasets" / "finetune.jsonl")
    assert sorted(r["messages"][1]["content"] for r in records) == sorted(q for q, _ in GOOD)
    assert all([m["role"] for m in r["messages"]] == ["system", "user", "assistant"] for r in records)
    assert all(r["metadata"]["value_score"] >= 0.7 and r["metadata"]["skill_id"] for r in records)


def test_a_paraphrase_finds_the_learned_skill_with_its_source_queries(app: Skilld, telemetry: Path) -> None:
    chats(telemetry, [(q, a, True) for q, a in GOOD])
    app.ingest([telemetry], learn=True)
    (best, *_) = app.search("python: get a reversed copy of my list, keep the original", 2)
    assert best["source_queries"] == [GOOD[0][0]] and best["score"] > 0.5
    assert {
        "name",
        "description",
        "steps",
        "tags",
        "source_query",
        "success_rate",
        "usage_count",
        "created_at",
        "value_score",
        "prompt_version",
        "model",
    } <= set(best)


def test_a_near_identical_pattern_is_merged_into_its_skill(app: Skilld, telemetry: Path) -> None:
    chats(telemetry, [(GOOD[0][0], GOOD[0][1], True), (GOOD[0][0], GOOD[0][1] + " Really.", True)])
    app.ingest([telemetry], learn=True)
    skills = app.skills("list")
    assert len(skills) == 1
    (skill,) = skills
    assert skill["evidence_count"] == 2 and len(skill["source_interactions"]) == 2
    assert app.status()["dataset_examples"] == 1  # the second example is a near-duplicate of the first


def test_ingest_again_and_a_restart_change_nothing(
    settings: Settings, app: Skilld, telemetry: Path, embedder: Any
) -> None:
    chats(telemetry, [(q, a, True) for q, a in GOOD])
    app.ingest([telemetry], learn=True)
    before = app.status()
    app.close()
    again = Skilld(settings)
    again.learner._embedder = embedder
    again.learner._extractor = Extractor(Scripted())
    again.ingest([telemetry], learn=True)
    after = again.status()
    again.close()
    for key in ("events", "interactions", "scored", "skills", "dataset_examples", "extracted"):
        assert after[key] == before[key], key


def test_no_learn_then_learning_later_ends_in_the_same_state(app: Skilld, telemetry: Path) -> None:
    chats(telemetry, [(q, a, True) for q, a in GOOD])
    app.ingest([telemetry], learn=False)
    assert app.status()["scored"] == 0
    app.learner.run_until_idle()
    status = app.status()
    assert (status["scored"], status["skills"], status["dataset_examples"]) == (2, 2, 2)


def test_a_failing_model_is_retried_with_backoff_then_parked_and_visible(app: Skilld, telemetry: Path) -> None:
    app.learner._extractor = Extractor(Scripted(fail=100))
    chats(telemetry, [GOOD[0] + (True,)])
    app.ingest([telemetry], learn=True)
    status = app.status()
    assert (status["parked_extractions"], status["skills"]) == (1, 0)
    (parked,) = status["parked"]
    assert parked["attempts"] == app.settings.extraction.max_attempts
    assert parked["error"] == "model server unreachable"


def test_a_retry_waits_for_its_backoff(app: Skilld, telemetry: Path) -> None:
    app.learner._extractor = Extractor(Scripted(fail=1))
    chats(telemetry, [GOOD[0] + (True,)])
    app.ingest([telemetry], learn=False)
    while app.learner.score_batch():
        pass
    assert app.learner.extract_one(backoff=3600) is True  # fails once
    assert app.learner.extract_one(backoff=3600) is False  # not due for an hour
    assert app.status()["pending_extractions"] == 1
    with app.store.conn:
        app.store.conn.execute("UPDATE extraction_queue SET next_attempt = 0")
    assert app.learner.extract_one() is True
    assert app.status()["skills"] == 1


def test_the_queue_serves_the_most_valuable_first_and_bounds_its_backlog(
    settings: Settings, embedder: Any, telemetry: Path
) -> None:
    settings.extraction.max_backlog = 1
    application = Skilld(settings)
    application.learner._embedder = embedder
    chats(
        telemetry,
        [
            (GOOD[0][0], "Slicing: `xs[::-1]` copies the list reversed, leaving xs intact.", True),
            (GOOD[1][0], "Add Restart=on-failure.", True),
        ],
    )
    application.ingest([telemetry], learn=False)
    while application.learner.score_batch():
        pass
    status = application.status()
    assert (status["pending_extractions"], status["waiting_extractions"]) == (1, 1)
    first = application.learner.learning.next_item()
    scores = dict(rows(settings.home, "SELECT interaction_key, score FROM scores"))
    assert first is not None and first.score == max(scores.values())
    application.close()


def test_feedback_rescores_and_a_correction_becomes_a_preference_pair(app: Skilld, telemetry: Path) -> None:
    chats(telemetry, [("what time is it", "I do not know.", None)])
    app.ingest([telemetry], learn=True)
    ((event_id,),) = rows(app.home, "SELECT id FROM events")
    assert app.explain(event_id)["score"] < 0.7
    result = app.feedback(event_id, 1, "Run `date` in a terminal; mail me at jo@example.com", drain=True)
    assert result["score"]["score"] >= 0.7 and result["score"]["feedback"] == 1.0
    assert app.explain(event_id)["reasons"]["feedback"] == "thumbs up"
    (pair,) = read_records(app.home / "datasets" / "preferences.jsonl")
    assert pair["prompt"] == "what time is it" and pair["rejected"] == "I do not know."
    assert pair["chosen"] == "Run `date` in a terminal; mail me at [REDACTED:EMAIL]"
    # Valuable enough to be looked at now, but "I do not know." holds no procedure: no skill, whatever the thumb.
    status = app.status()
    assert (status["skills"], status["no_skill"], status["pending_extractions"]) == (0, 1, 0)
    extraction = app.explain(event_id)["extraction"]
    assert extraction["state"] == "no_skill" and "no procedure" in extraction["reason"]


def test_skills_export_imports_on_another_workstation_without_duplicates(
    app: Skilld, telemetry: Path, tmp_path: Path, embedder: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    chats(telemetry, [(q, a, True) for q, a in GOOD])
    app.ingest([telemetry], learn=True)
    export = tmp_path / "skills.jsonl"
    assert app.skills("export", str(export))["exported"] == 2
    from daemon.config import load_settings

    other = Skilld(load_settings(home=tmp_path / "other-home"))
    other.learner._embedder = embedder
    assert other.skills("import", str(export)) == {"added": 2, "merged": 0, "unchanged": 0}
    assert other.skills("import", str(export)) == {"added": 0, "merged": 0, "unchanged": 2}
    assert other.status()["skills"] == 2
    assert other.search("reverse a python list", 1)[0]["source_queries"] == [GOOD[0][0]]
    skill_id = other.skills("list")[0]["id"]
    assert other.skills("delete", skill_id) == {"deleted": 1} and other.status()["skills"] == 1
    other.close()


def test_dataset_export_splits_train_and_validation_stably(app: Skilld, telemetry: Path, tmp_path: Path) -> None:
    topics = [
        "reverse a list in Python",
        "undo a git commit",
        "restart a systemd service",
        "parse JSON in Go",
        "index a PostgreSQL column",
        "debounce a React handler",
        "read a CSV file with pandas",
        "profile a slow Rust function",
        "mount an NFS share",
        "rotate logs with logrotate",
        "write a Dockerfile for Node",
        "set an environment variable in fish",
    ]
    many = [
        (f"How do I {t}?", f"Here is how to {t}: use the standard tool for it and check the result.", True)
        for t in topics
    ]
    chats(telemetry, many)
    app.ingest([telemetry], learn=True)
    stats = app.dataset("stats")
    assert stats["examples"] == 12 and stats["by_source"] == {"continue": 12}
    first = app.dataset("export", str(tmp_path / "a"))
    second = app.dataset("export", str(tmp_path / "b"))
    assert first["train"] + first["validation"] == 12 and first["validation"] >= 1
    assert (tmp_path / "a" / "validation.jsonl").read_text() == (tmp_path / "b" / "validation.jsonl").read_text()
    assert second["train"] == first["train"]


class Owned:
    """A model the learner opens itself (through the factory), recording whether it was closed."""

    model = "owned.gguf"
    opened: ClassVar[list[Owned]] = []

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.closed = False
        Owned.opened.append(self)

    def complete(self, messages: list[dict[str, str]], schema: dict[str, Any] | None, max_tokens: int) -> Completion:
        return Completion('{"no_skill": "a test model"}', 5, 0.01)

    def close(self) -> None:
        self.closed = True


def test_a_model_the_learner_opened_is_closed_when_replaced_and_at_close(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    import extractors.factory

    monkeypatch.setattr(extractors.factory, "open_backend", Owned)
    Owned.opened.clear()
    application = Skilld(settings)
    learner = application.learner
    first = learner.extractor.backend
    assert learner.use_adapter(None)["switched"] and Owned.opened == [first] and Owned.opened[0].closed
    second = learner.extractor.backend
    assert second is not first and not Owned.opened[1].closed
    application.close()
    assert Owned.opened[1].closed
    handed = Owned()  # a model handed to it (a test's shared model) is not the learner's to close
    application = Skilld(settings)
    application.learner._extractor = Extractor(handed)
    application.close()
    assert not handed.closed
