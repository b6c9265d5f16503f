"""The skill pattern an extractor must produce, and its JSON schema (bounded, so small models cannot ramble)."""

from __future__ import annotations

import json
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

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


def skill_json_schema() -> dict[str, Any]:
    """The JSON schema the model's output is constrained to (every bound explicit, every key required)."""
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


def schema_text() -> str:
    """The schema as compact JSON text."""
    return json.dumps(skill_json_schema(), separators=(",", ":"))
