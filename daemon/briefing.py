"""Skills as markdown: the block an editor puts before a prompt (`skilld context`, the hooks), the index a
session starts with, and the whole skill an MCP client reads as a resource (`skill://<id>`)."""

from __future__ import annotations

from typing import Any

from storage.agent_skills import code_fence

HEADING = "## Skills learned from your past sessions (skilld)"
INTRO = (
    "Procedures that worked before in this workstation's sessions, relevant to this request. "
    "Use one if it fits; ignore them if not."
)


def _evidence(skill: dict[str, Any]) -> str:
    helped, not_helped = int(skill.get("helped") or 0), int(skill.get("not_helped") or 0)
    judged = f"helped {helped} of {helped + not_helped}" if helped + not_helped else "not yet rated"
    return f"skill `{skill['id']}`, learned from {skill.get('evidence_count', 1)} session(s), {judged}"


def skill_section(skill: dict[str, Any], level: str = "###", example: bool = True) -> str:
    """One skill: its name, when to use it, its steps, and (optionally) its example."""
    lines = [f"{level} {skill['name']}", f"{skill['description']} ({_evidence(skill)})", ""]
    if skill.get("prerequisites"):
        lines += ["Prerequisites: " + "; ".join(skill["prerequisites"]), ""]
    lines += [f"{n}. {step}" for n, step in enumerate(skill.get("steps") or [], 1)]
    if example and skill.get("example"):
        fence = code_fence(skill["example"])
        lines += ["", "Example:", fence, skill["example"].rstrip(), fence]
    return "\n".join(lines)


def skills_block(skills: list[dict[str, Any]], max_chars: int) -> tuple[str, list[dict[str, Any]]]:
    """The block for a prompt and the skills it shows: best first, each whole (its example dropped before
    the skill itself when the bound is near), within `max_chars`. Empty when no skill fits or none is given."""
    parts = [HEADING, INTRO]
    shown: list[dict[str, Any]] = []
    for skill in skills:
        for section in (skill_section(skill), skill_section(skill, example=False)):
            if len("\n\n".join([*parts, section])) + 1 <= max_chars:  # and its final newline
                parts.append(section)
                shown.append(skill)
                break
    return ("\n\n".join(parts) + "\n", shown) if shown else ("", [])


def index_block(skills: list[dict[str, Any]], max_chars: int) -> str:
    """What a session starts with: the skills that have helped most, by name, and how to get one whole."""
    if not skills:
        return ""
    lines = [
        HEADING,
        "Skills that helped before on this workstation. The skilld MCP tools `search_skills` and `get_skill` "
        "give one whole.",
        "",
    ]
    for skill in skills:
        line = f"- {skill['name']}: {skill['description']} (`{skill['id']}`)"
        if len("\n".join([*lines, line])) + 1 > max_chars:
            break
        lines.append(line)
    return "\n".join(lines) + "\n" if len(lines) > 3 else ""


def skill_document(skill: dict[str, Any]) -> str:
    """A whole skill as a markdown document (the `skill://<id>` resource)."""
    parts = [skill_section(skill, level="#")]
    queries = skill.get("source_queries") or []
    if queries:
        parts.append("## Learned from\n" + "\n".join(f"- {q.splitlines()[0][:200]}" for q in queries[:5]))
    usefulness = skill.get("usefulness")
    parts.append(
        "## Usage\n"
        f"Served {skill.get('usage_count', 0)} time(s), last {skill.get('last_used') or 'never'}; "
        f"helped {skill.get('helped', 0)}, not helped {skill.get('not_helped', 0)}, usefulness {usefulness}"
        + (f"; retired: {skill['retired'].get('reason')}" if skill.get("retired") else "")
    )
    return "\n\n".join(parts) + "\n"
