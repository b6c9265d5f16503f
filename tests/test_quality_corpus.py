"""The labelled quality corpus through the whole pipeline with the real models: the issue's targets."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from daemon.app import Skilld
from extractors.extractor import Extractor
from tests.quality_corpus import load_corpus, measure, write_telemetry

pytestmark = pytest.mark.slow


def test_the_corpus_has_every_kind_of_exchange_the_issue_names() -> None:
    corpus = load_corpus()
    kinds = {kind: sum(1 for e in corpus if e.kind == kind) for kind in ("substantive", "trivial", "useless", "wrong")}
    assert len(corpus) >= 40 and all(kinds.values()), kinds
    assert len({e.style for e in corpus if e.kind == "substantive"}) >= 6
    assert all(e.key in e.answer and e.paraphrase for e in corpus if e.deserves)
    assert len({e.question for e in corpus}) == len(corpus)  # measure() finds each by its question


@pytest.fixture(scope="module")
def figures(tmp_path_factory: pytest.TempPathFactory, embedder: Any, llama: Any) -> Iterator[dict[str, Any]]:
    """The corpus written as Continue files and learned by skilld with the bundled models (once per module)."""
    from daemon.config import load_settings

    root = tmp_path_factory.mktemp("quality")
    corpus = load_corpus()
    write_telemetry(corpus, root / "telemetry")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("SKILLD_TELEMETRY__PATHS", f'["{root / "telemetry"}"]')
        app = Skilld(load_settings(home=root / "home"))
    app.learner._embedder = embedder
    app.learner._extractor = Extractor(llama)
    seconds: list[float] = []
    app.learner.observe = lambda took: seconds.append(took) if took is not None else None
    try:
        app.ingest([Path(root / "telemetry")], learn=True)
        yield measure(app, corpus, seconds)
    finally:
        app.close()


def test_trivial_useless_and_wrong_exchanges_never_become_skills(figures: dict[str, Any]) -> None:
    assert figures["precision"] >= 0.95, figures["false_skills"]
    assert not figures["false_skills"]


def test_substantive_exchanges_with_a_thumbs_up_become_skills(figures: dict[str, Any]) -> None:
    assert figures["recall"] >= 0.9, (figures["missed"], {m: figures["decisions"][m] for m in figures["missed"]})


def test_stored_skills_are_grounded_and_free_of_defects(figures: dict[str, Any]) -> None:
    assert figures["defect_rate"] == 0, figures["defects"]
    assert figures["grounding_mean"] >= 0.8 and figures["grounding_min"] >= 0.7


def test_a_skill_found_by_paraphrase_reads_as_the_answer_to_that_question(figures: dict[str, Any]) -> None:
    assert figures["paraphrase_recall_at_3_rate"] >= 11 / 12, figures["paraphrase_recall_at_3"]
    found, named = (int(x) for x in reversed(figures["found_steps_name_key"].split("/")))
    assert named >= 0.9 * found, figures["found_steps_miss_key"]
