"""An upgrade holds what an older version stored to today's quality gate: junk retired, kept, never served."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from daemon.app import Skilld
from extractors import gate, triage
from extractors.extractor import Extractor
from extractors.gate import GATE_VERSION, Assessment, Candidate
from tests.helpers import continue_chat, rows, write_lines
from tests.test_quality import GIT, Junk

pytestmark = pytest.mark.slow

VENV = (
    "How do I set up a Python virtual environment?",
    "1. Run `python3 -m venv .venv`\n2. Activate it with `source .venv/bin/activate`\n"
    "3. Install packages with `pip install -r requirements.txt`",
)
HELLO = ("hello", "Hi! What can I do for you today?")
CHATS = Path("dev_data") / "0.2.0" / "chatInteraction.jsonl"


def _without_a_gate(
    candidates: list[Candidate], question: str, answer: str, context: str, threshold: float
) -> tuple[Candidate, Assessment, str]:
    """What versions before the gate did: the model's proposal, whatever it said."""
    return candidates[-1], Assessment(1.0, [], threshold), ""


def _as_the_old_version_did(app: Skilld, telemetry: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Learn three chats with no triage and no gate (the junk model's proposal stored for each)."""
    with monkeypatch.context() as old:
        old.setattr(gate, "GATE_VERSION", 0)
        old.setattr(gate, "choose", _without_a_gate)
        old.setattr(triage, "no_skill_reason", lambda question, answer: None)
        write_lines(telemetry / CHATS, [continue_chat(f"s{i}", q, a) for i, (q, a) in enumerate((GIT, VENV, HELLO))])
        write_lines(
            telemetry / Path("dev_data/0.2.0/chatFeedback.jsonl"),
            [
                {**continue_chat(f"s{i}", q, a), "eventName": "chatFeedback", "feedback": True}
                for i, (q, a) in enumerate((GIT, VENV, HELLO))
            ],
        )
        app.ingest([telemetry], learn=True)
    # ... and the rendered prompt it took for the question, in a record of its own.
    rendered = {
        "messages": [
            {"role": "system", "content": "You are a helpful, precise coding assistant running locally."},
            {"role": "user", "content": f"<system>\nBe brief.\n\n<user>\n{GIT[0]}\n\n"},
            {"role": "assistant", "content": GIT[1]},
        ],
        "metadata": {"interaction": "an-older-key", "source": "continue"},
    }
    write_lines(app.home / "datasets" / "finetune.jsonl", [rendered])


def test_an_upgrade_retires_what_fails_the_gate_and_extracts_those_exchanges_again(
    app: Skilld, telemetry: Path, embedder: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    app.learner._embedder = embedder
    app.learner._extractor = Extractor(Junk())
    _as_the_old_version_did(app, telemetry, monkeypatch)
    old = app.skills("list")
    assert {s["name"] for s in old} == {"<user_info"} and app.status()["dataset_examples"] == 4
    junk_ids = {s["id"] for s in old}

    summary = app.learner.recheck_if_upgraded()  # the first learning step after the upgrade
    assert summary is not None and summary["skills_retired"] == len(junk_ids) and summary["examples_retired"] == 4
    reasons = [r["reason"] for r in summary["reasons"]]
    greeting = "no reusable skill: a greeting or thanks, not a question"
    assert reasons.count(greeting) == 1 and len(reasons) == 3
    assert all(
        "placeholder '<user_info'" in r and "tag 'thebestguywizardnonself1'" in r for r in reasons if r != greeting
    )
    assert app.learner.recheck_if_upgraded() is None  # once per gate version

    # Kept, with the reason; never served.
    for skill_id in junk_ids:
        retired = app.skills("show", skill_id)
        assert retired["retired"]["gate"] == GATE_VERSION and retired["retired"]["reason"]
    assert not junk_ids & {s["id"] for s in app.search(GIT[0], 5)}
    records = [json.loads(line) for line in (app.home / "datasets" / "finetune.jsonl").read_text().splitlines()]
    retired_for = sorted(r["metadata"]["retired"]["reason"] for r in records)
    assert retired_for[0].startswith("its skill was retired: ") and retired_for[-1] == (
        "the question is a rendered prompt, not what the person asked"
    )
    exported = app.dataset("export", str(app.home / "export"))
    assert exported["train"] + exported["validation"] == 0  # none is trained on
    status = app.status()
    assert status["retired"] == {"skills": len(junk_ids), "examples": 4} and status["dataset_examples"] == 0

    # The exchanges are extracted again, by today's pipeline: the procedures become grounded skills.
    app.learner.run_until_idle()
    names = sorted(s["name"] for s in app.skills("list"))
    assert names == ["Set up a Python virtual environment", "Undo my last git commit but keep the changes staged"]
    decided = {r["query"]: r["extraction"] for r in app.interactions("continue", 10)}
    assert decided["hello"]["state"] == "no_skill" and "greeting" in decided["hello"]["reason"]
    fresh = [json.loads(line) for line in (app.home / "datasets" / "finetune.jsonl").read_text().splitlines()]
    trained = [r for r in fresh if "retired" not in r["metadata"]]
    assert sorted(r["messages"][1]["content"] for r in trained) == sorted([GIT[0], VENV[0]])
    assert all(r["metadata"]["quality"]["gate"] == GATE_VERSION for r in trained)
    assert rows(app.home, "SELECT COUNT(*) FROM extraction_queue WHERE state = 'pending'") == [(0,)]


def test_a_forced_recheck_keeps_good_skills_and_records_their_figures(
    app: Skilld, telemetry: Path, embedder: Any
) -> None:
    app.learner._embedder = embedder
    app.learner._extractor = Extractor(Junk())
    write_lines(telemetry / CHATS, [continue_chat("s1", *GIT)])
    write_lines(
        telemetry / Path("dev_data/0.2.0/chatFeedback.jsonl"),
        [{**continue_chat("s1", *GIT), "eventName": "chatFeedback", "feedback": True}],
    )
    app.ingest([telemetry], learn=True)
    (before,) = app.skills("list")
    summary = app.skills("recheck")
    assert (summary["skills_checked"], summary["skills_retired"], summary["examples_retired"]) == (1, 0, 0)
    (after,) = app.skills("list")
    assert after["id"] == before["id"] and after["quality"]["grounding"] >= 0.8 and after["quality"]["defects"] == []


def test_forgetting_a_user_removes_their_retired_skills_too(
    app: Skilld, telemetry: Path, embedder: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    app.learner._embedder = embedder
    app.learner._extractor = Extractor(Junk())
    with monkeypatch.context() as old:
        old.setattr(gate, "GATE_VERSION", 0)
        old.setattr(gate, "choose", _without_a_gate)
        write_lines(telemetry / CHATS, [continue_chat("s1", *VENV, user="carol")])
        write_lines(
            telemetry / Path("dev_data/0.2.0/chatFeedback.jsonl"),
            [{**continue_chat("s1", *VENV, user="carol"), "eventName": "chatFeedback", "feedback": True}],
        )
        app.ingest([telemetry], learn=True)
    (junk,) = app.skills("list")
    app.learner.recheck()
    assert "retired" in app.skills("show", junk["id"])
    app.forget("carol")
    with pytest.raises(LookupError):
        app.skills("show", junk["id"])


def test_an_imported_skill_is_judged_on_its_form_and_keeps_a_placeholder_its_answer_had(
    app: Skilld, embedder: Any, tmp_path: Path
) -> None:
    app.learner._embedder = embedder
    base = {
        "name": "Roll back a bad deployment in kubernetes",
        "description": "Return a broken rollout to the revision that ran before.",
        "steps": ["Run `kubectl rollout undo deployment/shop-api`", "Add `-n <namespace>` outside the default one"],
        "prerequisites": [],
        "tags": ["kubernetes"],
        "example": "kubectl rollout undo deployment/shop-api",
        "source_query": "how do I roll back a bad deployment in kubernetes?",
        "source_queries": ["how do I roll back a bad deployment in kubernetes?"],
        "source_interactions": ["continue:elsewhere"],
    }
    judged = {**base, "id": "6f0e1d2c-3b4a-4958-8776-655443322110", "quality": {"gate": 2, "defects": []}}
    unjudged = {
        **base,
        "id": "7a1b2c3d-4e5f-4a6b-9c8d-7e6f5a4b3c2d",
        "name": "Open a shell inside a pod",
        "description": "Get an interactive shell in a running container.",
        "steps": ["Run `kubectl exec -it <pod> -- sh`"],
        "source_query": "how do I get a shell in a kubernetes pod?",
        "source_queries": ["how do I get a shell in a kubernetes pod?"],
        "source_interactions": ["continue:elsewhere-2"],
    }
    export = tmp_path / "skills.jsonl"
    write_lines(export, [judged, unjudged], mode="w")
    assert app.skills("import", str(export)) == {"added": 2, "merged": 0, "unchanged": 0}
    summary = app.skills("recheck")
    assert summary["skills_checked"] == 2 and summary["skills_retired"] == 1, summary
    assert [r["skill"] for r in summary["reasons"]] == [unjudged["id"]]  # never judged: a placeholder is a defect
    assert "placeholder '<pod>'" in summary["reasons"][0]["reason"]
    assert [s["id"] for s in app.skills("list")] == [judged["id"]]
