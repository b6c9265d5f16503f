"""What an extractor's model answers, and its JSON schema (bounded, so small models cannot ramble).

The answer is either a skill pattern or an explicit "no reusable skill" with its reason: a greeting, a
fact, an answer that holds no procedure. The schema is one of the two objects (`anyOf`), so a model under a
grammar can take either branch and nothing in between. The bounds live on the models only; the schemas
the grammar and the HTTP backends read are generated from them.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, TypeAdapter

TAG_PATTERN = r"^[a-z][a-z0-9+#.-]{1,23}$"

Prerequisite = Annotated[str, StringConstraints(min_length=2, max_length=100)]
Step = Annotated[str, StringConstraints(min_length=3, max_length=150)]
Tag = Annotated[str, StringConstraints(pattern=TAG_PATTERN)]

# The schema asks the model for every key, including those with a default: a model's answer, like a
# serialized pattern, always has them all (and a grammar with optional keys lets a small model drop them).
_CONFIG = ConfigDict(extra="forbid", str_strip_whitespace=True, json_schema_serialization_defaults_required=True)


class SkillPattern(BaseModel):
    """A reusable way of solving a kind of problem, learned from one valuable interaction."""

    model_config = _CONFIG

    name: str = Field(min_length=3, max_length=60, description="a short imperative title")
    description: str = Field(min_length=10, max_length=300, description="when and why to use it")
    prerequisites: list[Prerequisite] = Field(default_factory=list, max_length=3)
    steps: list[Step] = Field(min_length=1, max_length=5)
    tags: list[Tag] = Field(min_length=1, max_length=5)
    example: str = Field(default="", max_length=300)


class NoSkill(BaseModel):
    """The model's answer that an exchange holds no reusable skill, and why."""

    model_config = _CONFIG

    no_skill: str = Field(min_length=3, max_length=120, description="why the exchange teaches nothing reusable")


Answer = SkillPattern | NoSkill
_ANSWER: TypeAdapter[SkillPattern | NoSkill] = TypeAdapter(Answer)

# Keywords that document a schema without constraining it; a grammar built from them would only grow.
_ANNOTATIONS = frozenset({"title", "description", "default"})


def parse_answer(text: str) -> SkillPattern | NoSkill:
    """The model's JSON answer as a skill pattern or a no-skill verdict (pydantic ValidationError if neither)."""
    return _ANSWER.validate_json(text)


def _constraints(node: dict[str, Any]) -> dict[str, Any]:
    """A schema node and its subschemas with only the keywords that constrain (no titles, descriptions, defaults)."""
    bare = {key: value for key, value in node.items() if key not in _ANNOTATIONS}
    if "properties" in bare:
        bare["properties"] = {name: _constraints(sub) for name, sub in bare["properties"].items()}
    if "items" in bare:
        bare["items"] = _constraints(bare["items"])
    return bare


def _object_schema(model: type[BaseModel]) -> dict[str, Any]:
    """A model's JSON schema: its fields in order, every one required, nothing else allowed."""
    return _constraints(model.model_json_schema(mode="serialization"))


def skill_json_schema() -> dict[str, Any]:
    """The JSON schema of one skill pattern (every bound explicit, every key required)."""
    return _object_schema(SkillPattern)


def no_skill_json_schema() -> dict[str, Any]:
    """The JSON schema of the no-skill branch: one reason."""
    return _object_schema(NoSkill)


def answer_json_schema() -> dict[str, Any]:
    """The JSON schema the model's output is constrained to: a skill pattern, or a no-skill verdict."""
    return {"anyOf": [skill_json_schema(), no_skill_json_schema()]}
