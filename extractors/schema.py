"""What an extractor's model answers, and its JSON schema (bounded, so small models cannot ramble).

The answer is either a skill pattern or an explicit "no reusable skill" with its reason: a greeting, a
fact, an answer that holds no procedure. The schema is one of the two objects (`anyOf`), so a model under a
grammar can take either branch and nothing in between.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, TypeAdapter

TAG_PATTERN = r"^[a-z][a-z0-9+#.-]{1,23}$"


class SkillPattern(BaseModel):
    """A reusable way of solving a kind of problem, learned from one valuable interaction."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: str = Field(min_length=3, max_length=60, description="a short imperative title")
    description: str = Field(min_length=10, max_length=300, description="when and why to use it")
    prerequisites: list[str] = Field(default_factory=list, max_length=3)
    steps: list[str] = Field(min_length=1, max_length=5)
    tags: list[Annotated[str, StringConstraints(pattern=TAG_PATTERN)]] = Field(min_length=1, max_length=5)
    example: str = Field(default="", max_length=300)


class NoSkill(BaseModel):
    """The model's answer that an exchange holds no reusable skill, and why."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    no_skill: str = Field(min_length=3, max_length=120, description="why the exchange teaches nothing reusable")


Answer = SkillPattern | NoSkill
_ANSWER: TypeAdapter[SkillPattern | NoSkill] = TypeAdapter(Answer)


def parse_answer(text: str) -> SkillPattern | NoSkill:
    """The model's JSON answer as a skill pattern or a no-skill verdict (pydantic ValidationError if neither)."""
    return _ANSWER.validate_json(text)


def skill_json_schema() -> dict[str, Any]:
    """The JSON schema of one skill pattern (every bound explicit, every key required)."""
    text = {"type": "string"}
    return {
        "type": "object",
        "properties": {
            "name": {**text, "minLength": 3, "maxLength": 60},
            "description": {**text, "minLength": 10, "maxLength": 300},
            "prerequisites": {"type": "array", "items": {**text, "minLength": 2, "maxLength": 100}, "maxItems": 3},
            "steps": {
                "type": "array",
                "items": {**text, "minLength": 3, "maxLength": 150},
                "minItems": 1,
                "maxItems": 5,
            },
            "tags": {"type": "array", "items": {**text, "pattern": TAG_PATTERN}, "minItems": 1, "maxItems": 5},
            "example": {**text, "maxLength": 300},
        },
        "required": ["name", "description", "prerequisites", "steps", "tags", "example"],
        "additionalProperties": False,
    }


def no_skill_json_schema() -> dict[str, Any]:
    """The JSON schema of the no-skill branch: one reason."""
    return {
        "type": "object",
        "properties": {"no_skill": {"type": "string", "minLength": 3, "maxLength": 120}},
        "required": ["no_skill"],
        "additionalProperties": False,
    }


def answer_json_schema() -> dict[str, Any]:
    """The JSON schema the model's output is constrained to: a skill pattern, or a no-skill verdict."""
    return {"anyOf": [skill_json_schema(), no_skill_json_schema()]}
