"""One interaction to a SkillPattern or a no-skill verdict: prompt, constrained call, validation, one repair."""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import ValidationError

from extractors.base import LLMBackend
from extractors.prompts import Prompt, load_prompt
from extractors.schema import NoSkill, SkillPattern, answer_json_schema, parse_answer


class ExtractionError(Exception):
    """The model's output was not a valid skill pattern, even after a repair attempt."""


@dataclass(frozen=True)
class Extraction:
    """A validated answer (a skill pattern, or the model's reason why there is none) and how it was made."""

    answer: SkillPattern | NoSkill
    prompt_version: str
    model: str
    tokens: int
    seconds: float
    repaired: bool

    @property
    def pattern(self) -> SkillPattern | None:
        return self.answer if isinstance(self.answer, SkillPattern) else None

    @property
    def no_skill(self) -> str | None:
        """The model's reason when it answered that the exchange holds no reusable skill."""
        return self.answer.no_skill if isinstance(self.answer, NoSkill) else None


def _first_error(exc: ValidationError) -> str:
    error = exc.errors()[0]
    where = ".".join(str(p) for p in error["loc"]) or "output"
    return f"{where}: {error['msg']}"


class Extractor:
    """Asks a backend for a skill pattern and validates it with pydantic."""

    def __init__(
        self, backend: LLMBackend, prompt: Prompt | None = None, max_tokens: int = 400, max_chars: int = 1500
    ) -> None:
        self.backend = backend
        self.prompt = prompt or load_prompt()
        self.max_tokens = max_tokens
        self.max_chars = max_chars
        self.schema = answer_json_schema()

    def extract(self, query: str, response: str, prompt: Prompt | None = None) -> Extraction:
        """The model's answer for one interaction (with this extractor's prompt, or another version: an
        experiment's arm); BackendError if the model fails, ExtractionError if it is invalid."""
        prompt = prompt or self.prompt
        messages = prompt.render(query, response, self.max_chars)
        first = self.backend.complete(messages, self.schema, self.max_tokens)
        try:
            answer = parse_answer(first.text)
            return Extraction(answer, prompt.version, self.backend.model, first.tokens, first.seconds, False)
        except ValidationError as exc:
            problem = _first_error(exc)
        repair = [
            *messages,
            {"role": "assistant", "content": first.text},
            {"role": "user", "content": f"That is not valid ({problem}). Answer with one corrected JSON object."},
        ]
        second = self.backend.complete(repair, self.schema, self.max_tokens)
        try:
            answer = parse_answer(second.text)
        except ValidationError as exc:
            raise ExtractionError(f"invalid skill after one repair: {_first_error(exc)}") from None
        return Extraction(
            answer,
            prompt.version,
            self.backend.model,
            first.tokens + second.tokens,
            first.seconds + second.seconds,
            True,
        )
