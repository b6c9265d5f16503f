"""The labelled quality corpus: exchanges written for skilld, each labelled whether it deserves a skill.

`tests/fixtures/quality/corpus.jsonl` holds substantive questions with good answers in several styles and
lengths, trivial exchanges, useless answers, wrong answers (thumbs down) and Continue chats with an attached
file. `write_telemetry` renders them as Continue writes them (the tags template, files attached before the
typed question); `measure` reads back what skilld made of them. The quality test and `scripts/bench --only
quality` share both.
"""

from __future__ import annotations

import json
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from daemon.app import Skilld

CORPUS = Path(__file__).parent / "fixtures" / "quality" / "corpus.jsonl"
RULES = "<important_rules>\n  Always name the language and file in the info string of code blocks.\n</important_rules>"


@dataclass(frozen=True)
class Exchange:
    """One labelled exchange."""

    id: str
    kind: str
    style: str
    question: str
    answer: str
    feedback: bool
    deserves: bool
    key: str
    paraphrase: str
    context: str = ""


def load_corpus(path: Path = CORPUS) -> list[Exchange]:
    with open(path, encoding="utf-8") as handle:
        return [Exchange(**json.loads(line)) for line in handle if line.strip()]


def rendered_prompt(exchange: Exchange, index: int) -> str:
    """The prompt as Continue's tags template renders it (every other one with its system rules)."""
    typed = f"{exchange.context}\n\n{exchange.question}" if exchange.context else exchange.question
    system = f"<system>\n{RULES}\n\n" if index % 2 else ""
    return f"{system}<user>\n{typed}\n\n"


def write_telemetry(exchanges: list[Exchange], root: Path) -> None:
    """The corpus as Continue 0.2.0 files: one chat per session, and the person's thumb on it."""
    folder = root / "dev_data" / "0.2.0"
    folder.mkdir(parents=True, exist_ok=True)
    chats: list[str] = []
    thumbs: list[str] = []
    for index, exchange in enumerate(exchanges):
        chat = {
            "eventName": "chatInteraction",
            "schema": "0.2.0",
            "sessionId": f"quality-{exchange.id}",
            "timestamp": f"2026-11-0{1 + index % 9}T10:{index % 60:02d}:00Z",
            "modelTitle": "Qwen 2.5 Coder 7B",
            "prompt": rendered_prompt(exchange, index),
            "completion": exchange.answer,
        }
        chats.append(json.dumps(chat))
        thumbs.append(json.dumps({**chat, "eventName": "chatFeedback", "feedback": exchange.feedback}))
    (folder / "chatInteraction.jsonl").write_text("\n".join(chats) + "\n", encoding="utf-8")
    (folder / "chatFeedback.jsonl").write_text("\n".join(thumbs) + "\n", encoding="utf-8")


def _mentions(skill: dict[str, Any], key: str, example: bool = True) -> bool:
    """Whether a skill's steps (and its example) name the answer's key command or term."""
    parts = [*skill.get("steps", []), *([str(skill.get("example", ""))] if example else [])]
    return key.lower() in "\n".join(parts).lower()


def measure(app: Skilld, exchanges: list[Exchange], seconds: list[float]) -> dict[str, Any]:
    """What skilld made of the corpus: precision and recall of "deserves a skill", the stored skills' grounding,
    defects and key terms, paraphrase recall@3, seconds per extraction, and a sample to read."""
    from extractors.gate import assess
    from extractors.schema import SkillPattern
    from storage.skills import PATTERN_FIELDS

    rows = {r["query"]: r for r in app.interactions("continue", 10_000)}
    skills = {s["id"]: s for s in app.skills("list")}
    made: dict[str, dict[str, Any]] = {}
    decisions: dict[str, dict[str, Any]] = {}
    for exchange in exchanges:
        row = rows.get(exchange.question)
        extraction = (row or {}).get("extraction") or {}
        decisions[exchange.id] = {"found": row is not None, **extraction}
        skill = skills.get(str(extraction.get("skill_id")))
        if skill is not None:
            made[exchange.id] = {**skill, "interaction": row["key"] if row else None}
    deserving = [e for e in exchanges if e.deserves and e.feedback]
    given = [e for e in exchanges if e.id in made]
    true_positive = [e for e in given if e.deserves]
    defects: dict[str, list[str]] = {}
    for exchange in given:
        skill = made[exchange.id]
        pattern = SkillPattern.model_validate({k: skill[k] for k in PATTERN_FIELDS})
        found = assess(pattern, exchange.question, exchange.answer, exchange.context).defects
        if found:
            defects[exchange.id] = found
    groundings = [float(made[e.id]["quality"]["grounding"]) for e in given]
    recalled: list[Exchange] = []
    for exchange in true_positive:
        hits = app.search(exchange.paraphrase, 3)
        if any(made[exchange.id]["interaction"] in h.get("source_interactions", []) for h in hits):
            recalled.append(exchange)
    mentions = [e.id for e in true_positive if _mentions(made[e.id], e.key)]
    found_read_well = [e.id for e in recalled if _mentions(made[e.id], e.key, example=False)]
    return {
        "exchanges": len(exchanges),
        "deserving": len(deserving),
        "skills_made": len(given),
        "precision": round(len(true_positive) / len(given), 3) if given else None,
        "recall": round(sum(1 for e in deserving if e.id in made) / len(deserving), 3) if deserving else None,
        "grounding_mean": round(statistics.mean(groundings), 3) if groundings else None,
        "grounding_min": round(min(groundings), 3) if groundings else None,
        "defect_rate": round(len(defects) / len(given), 3) if given else None,
        "defects": defects,
        "key_term_in_steps_or_example": round(len(mentions) / len(true_positive), 3) if true_positive else None,
        "paraphrase_recall_at_3": f"{len(recalled)}/{len(true_positive)}",
        "paraphrase_recall_at_3_rate": round(len(recalled) / len(true_positive), 3) if true_positive else None,
        "found_steps_name_key": f"{len(found_read_well)}/{len(recalled)}",
        "found_steps_miss_key": [e.id for e in recalled if e.id not in found_read_well],
        "origins": {o: sum(1 for s in made.values() if s["quality"]["origin"] == o) for o in ("draft", "model")},
        "seconds_per_extraction": round(statistics.mean(seconds), 2) if seconds else None,
        "seconds_per_extraction_max": round(max(seconds), 2) if seconds else None,
        "missed": [e.id for e in deserving if e.id not in made],
        "false_skills": [e.id for e in given if not e.deserves],
        "decisions": decisions,
        "sample": [
            {"question": e.question, "name": made[e.id]["name"], "steps": made[e.id]["steps"]} for e in true_positive
        ],
    }
