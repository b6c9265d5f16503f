"""Skills as Agent Skills folders (agentskills.io): one `<name>/SKILL.md` per skill, kept in step by `sync`.

An agent (Claude Code's `~/.claude/skills`, others) reads a folder's YAML frontmatter to decide when to load
it, so the frontmatter must parse whatever a learned skill's text holds: every scalar is written as a
JSON string, which is a YAML double-quoted scalar, with the few characters YAML reads differently from JSON
escaped. The folder name is the frontmatter `name`, which the spec bounds to 64 lowercase ASCII letters,
digits and single hyphens.

The directory is shared with the user's own skills. A folder skilld writes carries `MARKER` (the skill id on
its first line); skilld rewrites or removes only such folders, and never touches a folder without it, a
symbolic link or a plain file.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
import unicodedata
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Literal

from storage.files import PRIVATE_DIR, write_atomic
from storage.skills import StoredSkill

MARKER = ".skilld-skill"
MARKER_NOTE = (
    "This folder is managed by skilld: it is replaced on every sync and removed when the skill is retired "
    "or deleted, so edits made here are lost. Folders without this file are never touched."
)
SKILL_FILE = "SKILL.md"
MAX_NAME = 64
MAX_DESCRIPTION = 1024
MAX_QUESTION = 200  # one question in the description or the provenance
PROVENANCE_QUESTIONS = 5
FALLBACK_NAME = "skill"  # a name with no ASCII letter or digit (e.g. all CJK) folds to nothing

Placed = Literal["added", "updated", "unchanged", "skipped"]

# Characters JSON leaves raw that YAML reads as line breaks or refuses in a stream (C1 controls, DEL, BOM).
_YAML_RAW = re.compile("[\x7f-\x9f\u2028\u2029\ufeff\ufffe\uffff]")


def code_fence(text: str) -> str:
    """A backtick fence longer than any run of backticks in the text, so the text cannot close it."""
    return "`" * max(3, 1 + max((len(run) for run in re.findall("`+", text)), default=0))


def folder_names(skills: Sequence[StoredSkill]) -> dict[str, str]:
    """Each skill id's folder (and frontmatter) name, unique within `skills` and the same for the same set.

    Skills are taken in id order: the first to claim a name keeps it bare, and the others get a suffix from
    their id (`-3f2a9c`), made longer if even that collides.
    """
    ordered = sorted(skills, key=lambda s: s.id)
    bases = {s.id: _slug(s.skill.name, MAX_NAME) for s in ordered}
    names: dict[str, str] = {}
    taken: set[str] = set()
    for stored in ordered:  # bare names first, so a suffixed name never takes one a skill would keep
        if bases[stored.id] not in taken:
            names[stored.id] = bases[stored.id]
            taken.add(bases[stored.id])
    for stored in ordered:
        if stored.id not in names:
            names[stored.id] = _suffixed(stored, taken)
            taken.add(names[stored.id])
    return names


def _slug(text: str, limit: int) -> str:
    """ASCII-folded, lowercase, hyphen-separated, cut at a hyphen to fit `limit`; never empty."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-") or FALLBACK_NAME
    if len(slug) > limit:
        cut = slug[: limit + 1]
        slug = cut[: cut.rfind("-")] if "-" in cut else slug[:limit]
    return slug.strip("-")


def _suffixed(stored: StoredSkill, taken: set[str]) -> str:
    """The skill's name with the shortest suffix from its id that no other skill holds."""
    key = re.sub(r"[^a-z0-9]", "", stored.id.lower())
    digest = hashlib.sha256(stored.id.encode("utf-8")).hexdigest()
    for suffix in dict.fromkeys(s for s in (key[:6], key[:12], digest[:16]) if s):
        name = f"{_slug(stored.skill.name, MAX_NAME - 1 - len(suffix))}-{suffix}"
        if name not in taken:
            return name
    return digest  # 64 hex digits: a valid name, and another skill's only if SHA-256 collides


def render(stored: StoredSkill, name: str) -> str:
    """The SKILL.md text: frontmatter (name, description, metadata), then instructions and provenance."""
    skill = stored.skill
    metadata = {"generated-by": "skilld", "skilld-skill-id": stored.id}
    if skill.tags:
        metadata["tags"] = ", ".join(_one_line(t) for t in skill.tags)
    lines = ["---", f"name: {_scalar(name)}", f"description: {_scalar(describe(stored))}", "metadata:"]
    lines += [f"  {key}: {_scalar(value)}" for key, value in metadata.items()]
    lines += ["---", "", f"# {_one_line(skill.name) or name}", ""]
    if skill.description.strip():
        lines += [skill.description.strip(), ""]
    if skill.prerequisites:
        lines += ["## Prerequisites", "", *(_item("- ", p) for p in skill.prerequisites), ""]
    if skill.steps:
        lines += ["## Steps", "", *(_item(f"{n}. ", s) for n, s in enumerate(skill.steps, 1)), ""]
    if skill.example.strip():
        fence = code_fence(skill.example)
        lines += ["## Example", "", fence, skill.example.strip("\n"), fence, ""]
    lines += _provenance(stored)
    # A lone surrogate (possible in text decoded from JSON) cannot be written as UTF-8.
    return "\n".join(lines).encode("utf-8", "replace").decode("utf-8")


def describe(stored: StoredSkill) -> str:
    """The frontmatter description: what the skill does, then "Use when ..." from the questions behind it.

    An agent reads only this to choose a skill, so both parts are kept: questions are added while they fit
    1024 characters, and a description too long to leave room for the first one is cut at a word.
    """
    skill = stored.skill
    what = skill.description.strip() or _one_line(skill.name) or FALLBACK_NAME
    if not what.endswith((".", "!", "?", "…")):
        what += "."  # the "Use when" sentence must not run on from it
    asks = [f'"{_shorten(_one_line(q), MAX_QUESTION)}"' for q in _questions(stored)]
    if not asks:
        asks = [f'"{_shorten(_one_line(skill.name), MAX_QUESTION)}"']
    shown = asks[:1]
    for ask in asks[1:]:
        if len(what) + len(_use_when([*shown, ask])) + 1 > MAX_DESCRIPTION:
            break
        shown.append(ask)
    when = _use_when(shown)
    return f"{_shorten(what, MAX_DESCRIPTION - len(when) - 1)} {when}"


def _use_when(asks: list[str]) -> str:
    return f"Use when asked something like {'; '.join(asks)}."


def _questions(stored: StoredSkill) -> list[str]:
    """The questions that produced the skill, once each, in the order they came."""
    given = stored.skill.source_queries or [stored.skill.source_query]
    return list(dict.fromkeys(q for q in given if q.strip()))


def _provenance(stored: StoredSkill) -> list[str]:
    skill = stored.skill
    n = skill.evidence_count
    lines = [
        "## Provenance",
        "",
        f"Learned by skilld from {n} interaction{'s' if n != 1 else ''}.",
        "",
        f"- Skill id: `{stored.id}`",
        f"- Created: {skill.created_at or 'unknown'}; last seen: {skill.last_seen or 'unknown'}",
        f"- Helped: {skill.helped}; not helped: {skill.not_helped}; usefulness: {skill.usefulness:.2f}",
        f"- Served: {skill.usage_count} time{'s' if skill.usage_count != 1 else ''}",
        "",
    ]
    questions = _questions(stored)
    if questions:
        lines += ["Questions that produced it:", ""]
        lines += [f"- {_shorten(_one_line(q), MAX_QUESTION)}" for q in questions[:PROVENANCE_QUESTIONS]]
        if len(questions) > PROVENANCE_QUESTIONS:
            lines.append(f"- (and {len(questions) - PROVENANCE_QUESTIONS} more)")
        lines.append("")
    return lines


def _scalar(text: str) -> str:
    """A YAML double-quoted scalar holding `text` exactly, and never a `---` that ends the frontmatter."""
    quoted = _YAML_RAW.sub(lambda m: f"\\u{ord(m.group()):04x}", json.dumps(text, ensure_ascii=False))
    # A parser that splits the file on "---" (the reference one) would end the frontmatter inside the text.
    return quoted.replace("---", "-\\u002d-")


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _shorten(text: str, limit: int) -> str:
    """`text` cut at a word (with "…") to at most `limit` characters."""
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    at = cut.rstrip().rfind(" ")
    return (cut[:at] if at > limit // 2 else cut).rstrip() + "…"


def _item(bullet: str, text: str) -> str:
    """A list item; its further lines indented so that they stay inside it."""
    first, *rest = text.strip().splitlines() or [""]
    return "\n".join([bullet + first, *(" " * len(bullet) + line if line.strip() else "" for line in rest)])


def export(skills: Iterable[StoredSkill], directory: Path) -> dict[str, Any]:
    """Write a folder per skill into `directory`, leaving every other folder there as it is."""
    placed = _place_all(list(skills), directory)
    skipped = [name for name, outcome in placed.items() if outcome == "skipped"]
    return {"exported": len(placed) - len(skipped), "path": str(directory), "skipped": skipped}


def sync(skills: Iterable[StoredSkill], directory: Path) -> dict[str, Any]:
    """Make skilld's folders in `directory` exactly `skills`: add, rewrite what changed, remove the rest.

    Removed are marked folders no skill here is written to: a retired or deleted skill's, a renamed
    skill's old one, a half-made one left by a crash.
    """
    placed = _place_all(list(skills), directory)
    removed = []
    for folder in sorted(directory.iterdir()):
        if folder.name not in placed and _marked(folder) is not None:
            shutil.rmtree(folder)
            removed.append(folder.name)
    report: dict[str, Any] = {"added": [], "updated": [], "removed": removed, "skipped": []}
    for name, outcome in placed.items():
        if outcome != "unchanged":
            report[outcome].append(name)
    return report


def _place_all(skills: list[StoredSkill], directory: Path) -> dict[str, Placed]:
    """Each skill's folder name and what writing it did, in name order."""
    if directory.exists() and not directory.is_dir():
        raise NotADirectoryError(f"{directory} is not a folder: give the folder to hold the skills")
    directory.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR)
    names = folder_names(skills)
    by_name = {names[s.id]: s for s in skills}
    return {name: _place(by_name[name], directory / name) for name in sorted(by_name)}


def _place(stored: StoredSkill, folder: Path) -> Placed:
    """Write one skill's folder unless something not skilld's holds its name; say what was done."""
    text = render(stored, folder.name)
    marker = f"{stored.id}\n{MARKER_NOTE}\n"
    if not folder.exists() and not folder.is_symlink():
        # Made aside and renamed in, so a crash never leaves a half-made folder without its marker.
        partial = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}.", suffix=".partial"))
        try:
            write_atomic(partial / MARKER, marker.encode("utf-8"))
            write_atomic(partial / SKILL_FILE, text.encode("utf-8"))
            os.rename(partial, folder)
        except OSError:
            shutil.rmtree(partial, ignore_errors=True)
            raise
        return "added"
    if _marked(folder) is None:
        return "skipped"
    changed = False
    for path, content in ((folder / MARKER, marker), (folder / SKILL_FILE, text)):
        if path.is_symlink() or not path.is_file() or path.read_bytes() != content.encode("utf-8"):
            write_atomic(path, content.encode("utf-8"))
            changed = True
    return "updated" if changed else "unchanged"


def _marked(folder: Path) -> str | None:
    """The skill id in a folder's marker; None when it is not a real folder carrying one."""
    marker = folder / MARKER
    if folder.is_symlink() or not folder.is_dir() or marker.is_symlink() or not marker.is_file():
        return None
    lines = marker.read_text(encoding="utf-8", errors="replace").splitlines()
    return lines[0].strip() if lines else ""
