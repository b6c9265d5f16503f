"""A/B tests of extraction through the real pipeline: arms assigned by hash, trials recorded, an arm that is
truly better promoted and equal arms left alone; the figures and commands a person reads.

The model is a stand-in whose proposals pass the quality gate at a planted rate per prompt version (the
test is about the experiment machinery; the real model's quality is measured by `scripts/bench`). Everything
else is real: Continue telemetry, scoring with the embedder, the gate, the library, SQLite.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from daemon.app import Skilld
from daemon.config import ArmConfig, ExperimentConfig, load_settings
from extractors.base import Completion
from extractors.draft import grounded_draft
from extractors.extractor import Extractor
from extractors.prompts import load_prompt
from tests.quality_corpus import Exchange, load_corpus, write_telemetry

pytestmark = pytest.mark.slow

JUNK = {
    "name": "Zorblax the quux frobnicator",
    "description": "Wibble the florp until the quux is zorbled.",
    "prerequisites": [],
    "steps": ["Frobnicate the wibble with the zorblax"],
    "tags": ["quux"],
    "example": "",
}


class PlantedModel:
    """Proposes the exchange's grounded skill with a planted probability per prompt version, else junk the
    gate rejects; the draw is a hash of the question, so a run is reproducible."""

    model = "planted"

    def __init__(self, exchanges: list[Exchange], rates: dict[str, float]) -> None:
        self.exchanges = exchanges
        self.systems = {load_prompt(v).system: rate for v, rate in rates.items()}

    def complete(self, messages: list[dict[str, str]], schema: dict[str, Any] | None, max_tokens: int) -> Completion:
        rate = self.systems[messages[0]["content"]]
        user = messages[1]["content"]
        exchange = next(e for e in self.exchanges if e.question in user)
        draw = int(hashlib.sha256(user.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
        draft = grounded_draft(exchange.question, exchange.answer)
        pattern = draft.model_dump() if draft is not None and draw < rate else JUNK
        return Completion(json.dumps(pattern), 50, 0.01)

    def close(self) -> None:
        pass


def _varied(count: int) -> list[Exchange]:
    """`count` distinct exchanges from the corpus's deserving ones (each question asked in several contexts)."""
    deserving = [e for e in load_corpus() if e.deserves and e.feedback]
    return [
        dataclasses.replace(e, id=f"{e.id}-{n}", question=f"{e.question} (in project {n})")
        for n in range(count // len(deserving) + 1)
        for e in deserving
    ][:count]


def _run(tmp_path: Path, embedder: Any, rates: dict[str, float], count: int) -> tuple[Skilld, dict[str, Any]]:
    settings = load_settings(home=tmp_path / "home")
    settings.experiments = [
        ExperimentConfig(
            name="prompt-v2",
            arms=[ArmConfig(name="control", prompt="v1"), ArmConfig(name="v2", prompt="v2")],
            min_samples=40,
        )
    ]
    settings.skills.model_no_skill = "final"
    app = Skilld(settings)
    app.learner._embedder = embedder
    exchanges = _varied(count)
    app.learner._extractor = Extractor(PlantedModel(exchanges, rates))
    app.experiments("start", "prompt-v2")
    write_telemetry(exchanges, tmp_path / "telemetry")
    app.ingest([tmp_path / "telemetry"], learn=True)
    return app, app.experiments("show", "prompt-v2")


def test_a_truly_better_prompt_is_promoted_and_becomes_the_default(tmp_path: Path, embedder: Any) -> None:
    app, shown = _run(tmp_path, embedder, {"v1": 0.45, "v2": 0.9}, 130)
    try:
        arms = {a["name"]: a for a in shown["arms"]}
        assert shown["state"] == "promoted" and shown["promoted"] == "v2", shown
        assert arms["v2"]["gate_pass_rate"] > arms["control"]["gate_pass_rate"] + 0.25
        assert arms["control"]["trials"] >= 40 and arms["v2"]["trials"] >= 40
        assert "promote v2" in shown["decision"]
        assert app.learner.experiments.default_prompt() == "v2"
        listed = app.experiments("list")
        assert listed[0]["state"] == "promoted"
        assert listed[0]["trials"] == arms["control"]["trials"] + arms["v2"]["trials"]
        trials = app.learner.experiments.store.trials("prompt-v2")
        assert app.learner.experiments.arm_for(trials[0].interaction_key) is None  # ended: no arm any more
    finally:
        app.close()


def test_equal_arms_are_not_promoted(tmp_path: Path, embedder: Any) -> None:
    app, shown = _run(tmp_path, embedder, {"v1": 0.7, "v2": 0.7}, 110)
    try:
        # Decided once, at the planned 40 trials per arm: no arm is better, the control stays.
        assert shown["state"] == "stopped" and shown["promoted"] is None, shown
        assert shown["verdict"]["promote"] is None and "keep control" in shown["verdict"]["reason"]
        assert shown["decision"].startswith("decided at 40 per arm")
        assert app.learner.experiments.default_prompt() is None  # the newest prompt, as before
        arms = {a["name"]: a for a in shown["arms"]}
        assert abs(arms["v2"]["gate_pass_rate"] - arms["control"]["gate_pass_rate"]) < 0.2
        assert all(c["still_needed_per_arm"] is None or c["still_needed_per_arm"] >= 0 for c in shown["comparisons"])
        with pytest.raises(LookupError, match="not running"):
            app.experiments("stop", "prompt-v2")
        app.experiments("start", "prompt-v2")  # a fresh run: the earlier trials are forgotten
        assert app.experiments("list")[0]["trials"] == 0
        assert app.experiments("stop", "prompt-v2")["state"] == "stopped"
        with pytest.raises(LookupError, match="no experiment 'nope'"):
            app.experiments("start", "nope")
    finally:
        app.close()


def test_an_arm_must_name_a_prompt_file() -> None:
    with pytest.raises(ValueError, match="no prompt v99"):
        ArmConfig(name="x", prompt="v99")
