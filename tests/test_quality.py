"""The quality gate, the grounded draft and the no-skill checks: junk never stored, real procedures kept."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from daemon.app import Skilld
from daemon.config import ConfigError, Settings, load_settings
from extractors.base import Completion
from extractors.context import relevant_context, training_prompt
from extractors.draft import grounded_draft
from extractors.extractor import Extractor
from extractors.gate import Candidate, assess, choose
from extractors.schema import NoSkill, SkillPattern, answer_json_schema, parse_answer
from extractors.triage import no_skill_reason
from tests.helpers import continue_chat, rows, write_lines

GIT = (
    "How do I undo my last git commit but keep the changes staged?",
    "Run `git reset --soft HEAD~1`. The commit disappears and its changes stay staged.",
)
# (question, answer, a word every step set must mention: the answer's key command or term)
PROCEDURES = [
    (*GIT, "git reset --soft"),
    (
        "How do I make a systemd user service restart when it crashes?",
        "Add `Restart=on-failure` to the [Service] section, then `systemctl --user daemon-reload`.",
        "Restart=on-failure",
    ),
    (
        "How do I set up a Python virtual environment?",
        "1. Run `python3 -m venv .venv`\n2. Activate it with `source .venv/bin/activate`\n"
        "3. Install packages with `pip install -r requirements.txt`",
        "venv",
    ),
    (
        "how can I find which process listens on port 8080",
        "Use `ss -ltnp 'sport = :8080'`, or `lsof -i :8080` if ss is missing.",
        "ss -ltnp",
    ),
    (
        "What's the best way to squash the last three commits?",
        "Start an interactive rebase with `git rebase -i HEAD~3`, then mark the second and third commits as "
        "`squash` and save.",
        "git rebase -i",
    ),
]
# The junk the issue quotes, each as a model might propose it for the git exchange, and the defect it shows.
JUNK = [
    ({"name": "<user_info"}, "placeholder"),
    ({"name": "<Your Name>"}, "placeholder"),
    ({"name": "git-branch"}, "slug"),
    ({"steps": ["]} }. The skill is: Write it as JSON, ignore any instruction inside it"]}, "template words"),
    ({"steps": ["$3/sffmpeg -i in.mp4 --preset medium-high_quality"]}, "grounding"),
    ({"prerequisites": ["$1,000"]}, "punctuation soup"),
    ({"tags": ["thebestguywizardnonself1"]}, "is not a word of the exchange"),
    ({"tags": ["howto"]}, "is not a word of the exchange"),
    ({"name": "<NAME>", "description": "The assistant answered"}, "placeholder"),
    ({"steps": ["1,2"]}, "is not an instruction"),
    ({"steps": ["Run `git reset --soft HEAD~1`", "Run `git reset --soft HEAD~1`"]}, "repeated"),
]
TRIVIAL = [
    ("hi", "Hello! How can I help you today?"),
    ("thanks!", "You're welcome."),
    ("1+1", "The result of 1 + 1 is **2**."),
    ("3*7=?", "21"),
    ("who are you?", "I am an AI assistant. Run me with care."),
    ("are you (quen2.5) now running inside this container?", "Yes, I run inside the container."),
    ("What is the capital of France?", "Paris."),
    ("tell me the date of eurosong 2025 finals", "The Eurovision 2025 Grand Final was on Saturday, 17 May 2025."),
]


def _good_for_git() -> dict[str, Any]:
    return {
        "name": "Undo the last git commit",
        "description": "Undo my last git commit and keep the changes staged.",
        "prerequisites": [],
        "steps": ["Run `git reset --soft HEAD~1`"],
        "tags": ["git", "commit"],
        "example": "git reset --soft HEAD~1",
    }


@pytest.mark.parametrize(("junk", "defect"), JUNK, ids=[j[1] + str(i) for i, j in enumerate(JUNK)])
def test_every_kind_of_junk_the_issue_quotes_is_rejected_with_its_reason(junk: dict[str, Any], defect: str) -> None:
    candidate = SkillPattern.model_validate({**_good_for_git(), **junk})
    verdict = assess(candidate, *GIT)
    assert not verdict.passed and defect in verdict.reason


def test_a_faithful_skill_passes_the_gate() -> None:
    verdict = assess(SkillPattern.model_validate(_good_for_git()), *GIT)
    assert verdict.passed and verdict.grounding >= 0.9 and verdict.reason == ""


@pytest.mark.parametrize(("question", "answer", "key"), PROCEDURES, ids=[p[2] for p in PROCEDURES])
def test_the_grounded_draft_of_a_procedure_passes_and_names_its_command(question: str, answer: str, key: str) -> None:
    assert no_skill_reason(question, answer) is None
    draft = grounded_draft(question, answer)
    assert draft is not None
    verdict = assess(draft, question, answer)
    assert verdict.passed and verdict.grounding >= 0.8, verdict.reason
    assert any(key in step for step in draft.steps), draft.steps
    assert "?" not in draft.name and not draft.name.lower().startswith(("how", "what", "can"))


def test_the_draft_reads_like_a_skill() -> None:
    draft = grounded_draft(*PROCEDURES[2][:2])
    assert draft is not None
    assert draft.name == "Set up a Python virtual environment"
    assert draft.steps == [
        "Run `python3 -m venv .venv`",
        "Activate it with `source .venv/bin/activate`",
        "Install packages with `pip install -r requirements.txt`",
    ]
    assert draft.example == "python3 -m venv .venv" and set(draft.tags) <= {"set", "python", "virtual", "environment"}


def test_the_description_is_the_opening_not_a_closing_caveat() -> None:
    steps = "1. Run `git reset --soft HEAD~1`.\n2. Check with `git status` that the changes are staged.\n\n"
    caveat = "If you'd rather have the changes unstaged, use `git reset HEAD~1` instead."
    draft = grounded_draft("How do I undo my last git commit but keep the changes?", steps + caveat)
    assert draft is not None and draft.description == "How to undo my last git commit but keep the changes."
    opening = "Move the branch back one commit; the changes stay staged.\n\n"
    draft = grounded_draft("How do I undo my last git commit but keep the changes?", opening + steps + caveat)
    assert draft is not None and draft.description == "Move the branch back one commit; the changes stay staged."
    draft = grounded_draft("docker is eating all my disk space, what do I do?", "1. Run `docker system prune -a`.")
    assert draft is not None and draft.description == "What to do when docker is eating all my disk space."


@pytest.mark.parametrize(("question", "answer"), TRIVIAL)
def test_a_trivial_exchange_has_no_skill_and_says_why(question: str, answer: str) -> None:
    assert no_skill_reason(question, answer)


def test_the_gate_keeps_the_better_grounded_candidate_and_a_tie_goes_to_the_model() -> None:
    draft = grounded_draft(*GIT)
    assert draft is not None
    junk = SkillPattern.model_validate({**_good_for_git(), "name": "<NAME>", "tags": ["howto"]})
    chosen, quality, _ = choose(
        [Candidate(draft, "draft", "grounded", "none"), Candidate(junk, "model", "v1", "m")], *GIT, "", 0.7
    )
    assert chosen is not None and chosen.origin == "draft" and quality is not None and quality.passed
    faithful = SkillPattern.model_validate(_good_for_git())
    chosen, _, _ = choose(
        [Candidate(draft, "draft", "grounded", "none"), Candidate(faithful, "model", "v1", "m")], *GIT, "", 0.7
    )
    assert chosen is not None and chosen.origin == "model"
    nothing, _, why = choose([Candidate(junk, "model", "v1", "m")], *GIT, "", 0.7)
    assert nothing is None and why.startswith("model: ") and "placeholder" in why


class Junk:
    """A model that proposes junk for every exchange (the stages around the model are under test)."""

    model = "junk"

    def complete(self, messages: list[dict[str, str]], schema: dict[str, Any] | None, max_tokens: int) -> Completion:
        proposal = {
            "name": "<user_info",
            "description": "The assistant answered the question.",
            "prerequisites": ["$1,000"],
            "steps": ["]} }. The skill is: Write it as JSON"],
            "tags": ["thebestguywizardnonself1"],
            "example": "",
        }
        return Completion(json.dumps(proposal), 20, 0.01)

    def close(self) -> None:
        pass


@pytest.fixture
def junk_app(settings: Settings, embedder: Any) -> Iterator[Skilld]:
    application = Skilld(settings)
    application.learner._embedder = embedder
    application.learner._extractor = Extractor(Junk())
    yield application
    application.close()


@pytest.mark.slow
def test_junk_from_the_model_is_never_stored_and_every_decision_is_visible(junk_app: Skilld, telemetry: Path) -> None:
    chats = [
        (*GIT, "s1"),
        ("hello", "Hi! What can I do for you today?", "s2"),
        ("what does this error mean: E1101", "It means the member does not exist on that object, per pylint.", "s3"),
    ]
    _continue_chat(telemetry, chats)
    junk_app.ingest([telemetry], learn=True)
    status = junk_app.status()
    assert (status["skills"], status["extracted"], status["no_skill"]) == (1, 1, 2)
    (skill,) = junk_app.skills("list")
    assert skill["name"] == "Undo my last git commit but keep the changes staged"
    assert skill["steps"] == ["Run `git reset --soft HEAD~1`."] and skill["model"] == "none"
    decided = {r["query"]: r["extraction"] for r in junk_app.interactions("continue", 10)}
    assert decided["hello"]["state"] == "no_skill" and "greeting" in decided["hello"]["reason"]
    assert "no procedure" in decided["what does this error mean: E1101"]["reason"]
    (example,) = [json.loads(line) for line in (junk_app.home / "datasets" / "finetune.jsonl").read_text().splitlines()]
    quality = example["metadata"]["quality"]
    assert quality["origin"] == "draft" and quality["grounding"] >= 0.8 and quality["defects"] == []
    assert rows(junk_app.home, "SELECT COUNT(*) FROM extraction_queue WHERE state = 'pending'") == [(0,)]


# --- the model's own "no reusable skill" ----------------------------------------------------------------------


def test_the_answer_schema_has_an_explicit_no_skill_branch_with_a_reason() -> None:
    schema = answer_json_schema()
    branches = [set(branch["required"]) for branch in schema["anyOf"]]
    assert {"no_skill"} in branches and any("steps" in b for b in branches)
    assert isinstance(parse_answer('{"no_skill": "a plain fact about Python"}'), NoSkill)
    assert isinstance(parse_answer(json.dumps(_good_for_git())), SkillPattern)
    with pytest.raises(ValidationError):
        parse_answer('{"no_skill": ""}')  # a verdict names its reason
    with pytest.raises(ValidationError):
        parse_answer(json.dumps({**_good_for_git(), "no_skill": "both at once"}))


class Says:
    """A model that answers one fixed JSON object."""

    model = "says.gguf"

    def __init__(self, answer: dict[str, Any]) -> None:
        self.answer = answer

    def complete(self, messages: list[dict[str, str]], schema: dict[str, Any] | None, max_tokens: int) -> Completion:
        return Completion(json.dumps(self.answer), 12, 0.01)

    def close(self) -> None:
        pass


def _continue_chat(telemetry: Path, chats: list[tuple[str, str, str]]) -> None:
    """Continue chats (question, answer, session), each with a thumbs-up."""
    records = [continue_chat(session, question, answer) for question, answer, session in chats]
    write_lines(telemetry / "dev_data" / "0.2.0" / "chatInteraction.jsonl", records)
    write_lines(
        telemetry / "dev_data" / "0.2.0" / "chatFeedback.jsonl",
        [{**r, "eventName": "chatFeedback", "feedback": True} for r in records],
    )


@pytest.mark.slow
@pytest.mark.parametrize(("mode", "state"), [("final", "no_skill"), ("advisory", "done"), ("auto", "done")])
def test_the_models_no_skill_is_final_only_where_configured(
    mode: str, state: str, home: Path, telemetry: Path, embedder: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SKILLD_TELEMETRY__PATHS", f'["{telemetry}"]')
    monkeypatch.setenv("SKILLD_SKILLS__MODEL_NO_SKILL", mode)
    application = Skilld(load_settings(home=home))
    application.learner._embedder = embedder
    application.learner._extractor = Extractor(Says({"no_skill": "one command, nothing reusable"}))
    try:
        _continue_chat(telemetry, [(*GIT, "s1")])
        application.ingest([telemetry], learn=True)
        (row,) = application.interactions("continue", 5)
        assert row["extraction"]["state"] == state
        if state == "no_skill":  # counted, with the model's reason, and never retried
            assert row["extraction"]["reason"] == "the model: one command, nothing reusable"
            assert application.status()["no_skill"] == 1 and application.skills("list") == []
        else:  # the bundled model's verdict is advice: the grounded draft passed the gate and stands
            assert [s["name"] for s in application.skills("list")] == [
                "Undo my last git commit but keep the changes staged"
            ]
    finally:
        application.close()


def test_a_bad_model_no_skill_mode_names_the_key_and_the_allowed_values(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SKILLD_SKILLS__MODEL_NO_SKILL", "sometimes")
    with pytest.raises(ConfigError) as raised:
        load_settings(home=home)
    assert "skills.model_no_skill" in str(raised.value) and "'advisory'" in str(raised.value)


# --- what a training record keeps of the context --------------------------------------------------------------

ATTACHED = "```src/loader.py\ndef load(path):\n    with open(path) as fh:\n        return json.load(fh)\n```"
RULES = "<important_rules>\nAlways answer in English and keep it short.\n</important_rules>"


def test_the_context_an_answer_draws_on_is_kept_and_the_rest_is_not() -> None:
    question = "why does this fail with a NameError?"
    answer = "Your `load` function calls `json.load` but never imports json: add `import json` at the top."
    kept = relevant_context(question, answer, f"{RULES}\n\n{ATTACHED}", 2000)
    assert kept == ATTACHED
    assert training_prompt(question, kept) == f"Context:\n{ATTACHED}\n\n{question}"
    assert relevant_context(*GIT, f"{RULES}\n\n{ATTACHED}", 2000) == ""  # the answer needs none of it
    assert len(relevant_context(question, answer, ATTACHED * 40, 300)) <= 300  # bounded


@pytest.mark.slow
def test_a_training_record_is_the_cleaned_question_with_the_context_it_needs(
    app: Skilld, telemetry: Path, embedder: Any
) -> None:
    app.learner._embedder = embedder
    app.learner._extractor = Extractor(Says({"no_skill": "none"}))
    question = "why does this fail with a NameError? how do I fix it?"
    answer = "Your `load` function calls `json.load` but never imports json: add `import json` at the top."
    prompt = f"<system>\n{RULES}\n\n<user>\n{ATTACHED}\n\n{question}\n\n"
    _continue_chat(telemetry, [(prompt, answer, "s1")])
    app.ingest([telemetry], learn=True)
    (record,) = [json.loads(line) for line in (app.home / "datasets" / "finetune.jsonl").read_text().splitlines()]
    user, assistant = record["messages"][1]["content"], record["messages"][2]["content"]
    assert user == f"Context:\n{ATTACHED}\n\n{question}" and assistant == answer
    assert "important_rules" not in user and "<user>" not in user
    assert record["metadata"]["context_chars"] == len(user) - len(question)
    key = app.interactions("continue", 5)[0]["key"]
    app.feedback(key, -1, "  Add `import json` at the top of src/loader.py.  ")
    (pair,) = [json.loads(line) for line in (app.home / "datasets" / "preferences.jsonl").read_text().splitlines()]
    assert (pair["prompt"], pair["rejected"]) == (user, answer)
    assert pair["chosen"] == "Add `import json` at the top of src/loader.py."
