"""storage/agent_skills.py: skills as Agent Skills folders that the reference validator accepts, kept in step."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from skills_ref.parser import parse_frontmatter
from skills_ref.validator import validate

from storage.agent_skills import MARKER, describe, export, folder_names, render, sync
from storage.skills import Skill, StoredSkill

NAME = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")
HOSTILE = "Counts lines: # not a comment, \"quoted\" and 'single'\n- a dash line\n*star &anchor --- ✓ ünïcödé"
LONG_NAME = " ".join(["Rebuild the search index after a schema migration"] * 4) + " and verify every shard"


def _stored(skill_id: str, name: str, **fields: object) -> StoredSkill:
    values: dict[str, object] = {
        "description": f"{name}, step by step.",
        "steps": ["Open a terminal in the project root"],
        "source_queries": [f"how do I {name.lower()}?"],
    }
    values.update(fields)
    return StoredSkill(skill_id, Skill.model_validate({"name": name, **values}))


def _library() -> list[StoredSkill]:
    return [
        _stored(
            "3f2a9c1e-0000-5000-8000-000000000001",
            "Count the total lines of JS code",
            description="Counts the lines of every JavaScript file in a repository.",
            prerequisites=["A POSIX shell with coreutils"],
            steps=["Run `wc -l *.js` in the source folder", "Read the last line:\nit holds the total"],
            tags=["javascript", "metrics"],
            example="$ wc -l *.js\n  120 app.js\n   40 util.js\n  160 total\n```not a fence```",
            source_queries=["how many lines of JS are in this repo?", "count js loc", "size of the frontend code"],
            evidence_count=3,
            helped=4,
            not_helped=1,
            usefulness=0.71,
            usage_count=5,
            created_at="2025-03-01T10:00:00Z",
            last_seen="2025-03-09T16:30:00Z",
        ),
        _stored("5b1d0e77-0000-5000-8000-000000000002", "Quote-safe: counting", description=HOSTILE),
        _stored("7c44aa10-0000-5000-8000-000000000003", "Déployer l'app — vite", description="Déploie l'app."),
        _stored("8d90bb21-0000-5000-8000-000000000004", LONG_NAME),
        _stored("a1b2c3d4-0000-5000-8000-000000000005", "Restart the dev server", steps=["Run `npm run dev`"]),
        _stored("e9f8a7b6-0000-5000-8000-000000000006", "Restart the dev server", steps=["Run `yarn dev`"]),
    ]


def _assert_valid(folder: Path) -> dict[str, object]:
    """The reference validator's verdict is empty, and the frontmatter's name is the folder's."""
    assert validate(folder) == [], folder
    parsed = parse_frontmatter((folder / "SKILL.md").read_text(encoding="utf-8"))
    metadata: dict[str, object] = parsed[0]
    assert metadata["name"] == folder.name
    return metadata


def test_every_exported_folder_passes_the_reference_validator_and_round_trips(tmp_path: Path) -> None:
    skills = _library()
    result = export(skills, tmp_path / "skills")
    assert result == {"exported": len(skills), "path": str(tmp_path / "skills"), "skipped": []}
    names = folder_names(skills)
    for stored in skills:
        folder = tmp_path / "skills" / names[stored.id]
        metadata = _assert_valid(folder)
        assert metadata["description"] == describe(stored)
        assert describe(stored).startswith(stored.skill.description.strip())
        text = (folder / "SKILL.md").read_text(encoding="utf-8")
        assert yaml.safe_load(text.split("\n---\n", 1)[0].removeprefix("---\n")) == metadata  # a full YAML parser
        assert (folder / MARKER).read_text().splitlines()[0] == stored.id
    assert sorted(p.name for p in (tmp_path / "skills").iterdir()) == sorted(names.values())  # no partials left


def test_folder_names_are_spec_names_unique_and_the_same_whatever_the_order() -> None:
    skills = _library()
    names = folder_names(skills)
    assert names == folder_names(list(reversed(skills)))
    assert len(set(names.values())) == len(skills)
    assert all(NAME.match(n) and len(n) <= 64 for n in names.values())
    assert names["3f2a9c1e-0000-5000-8000-000000000001"] == "count-the-total-lines-of-js-code"
    assert names["7c44aa10-0000-5000-8000-000000000003"] == "deployer-l-app-vite"
    long = names["8d90bb21-0000-5000-8000-000000000004"]
    assert "rebuild-the-search-index-after-a-schema-migration-rebuild-the".startswith(long)
    assert long.split("-")[-1] in {"rebuild", "the", "search", "index"}  # cut at a word, not inside one
    # The first by id keeps the name; the other gets a suffix from its id.
    assert names["a1b2c3d4-0000-5000-8000-000000000005"] == "restart-the-dev-server"
    assert names["e9f8a7b6-0000-5000-8000-000000000006"] == "restart-the-dev-server-e9f8a7"


def test_a_suffixed_name_still_fits_64_characters_and_a_name_with_no_ascii_gets_one() -> None:
    twins = [_stored(f"{n}{'f' * 31}", "x" * 70 + " y") for n in "ab"] + [_stored("c", "部署应用")]
    names = folder_names(twins)
    assert names[twins[1].id] == f"{'x' * 57}-bfffff" and len(names[twins[1].id]) <= 64
    assert names["c"] == "skill"


def test_the_description_says_what_and_when_within_1024_characters() -> None:
    stored = _library()[0]
    assert describe(stored) == (
        "Counts the lines of every JavaScript file in a repository. Use when asked something like "
        '"how many lines of JS are in this repo?"; "count js loc"; "size of the frontend code".'
    )
    wordy = _stored("w", "Wordy", description="word " * 400, source_queries=[f"question {i} " * 20 for i in range(9)])
    text = describe(wordy)
    assert len(text) <= 1024 and "… Use when asked something like" in text and '"question 0' in text
    assert text.split("…")[0].endswith("word")  # cut between words


def test_the_body_holds_the_steps_prerequisites_example_and_provenance() -> None:
    stored = _library()[0]
    questions = [f"question number {i}" for i in range(7)]
    stored = StoredSkill(stored.id, stored.skill.model_copy(update={"source_queries": questions}))
    body = render(stored, "count-the-total-lines-of-js-code").split("\n---\n", 1)[1]
    assert body.startswith("\n# Count the total lines of JS code\n")
    assert "## Prerequisites\n\n- A POSIX shell with coreutils\n" in body
    assert "1. Run `wc -l *.js` in the source folder\n2. Read the last line:\n   it holds the total\n" in body
    assert "\n````\n$ wc -l *.js\n" in body and "```not a fence```\n````\n" in body
    assert "Learned by skilld from 3 interactions." in body
    assert "- question number 4\n- (and 2 more)" in body and "question number 5" not in body
    assert f"- Skill id: `{stored.id}`" in body
    assert "- Created: 2025-03-01T10:00:00Z; last seen: 2025-03-09T16:30:00Z" in body
    assert "- Helped: 4; not helped: 1; usefulness: 0.71" in body


def test_sync_adds_rewrites_only_what_changed_and_removes_what_went(tmp_path: Path) -> None:
    target = tmp_path / "skills"
    skills = _library()
    first = sync(skills, target)
    assert sorted(first["added"]) == sorted(folder_names(skills).values())
    assert first["updated"] == first["removed"] == first["skipped"] == []

    unchanged = target / "count-the-total-lines-of-js-code" / "SKILL.md"
    before = unchanged.stat().st_mtime_ns
    changed = StoredSkill(skills[2].id, skills[2].skill.model_copy(update={"steps": ["Run `make deploy`"]}))
    second = sync([skills[0], changed, *skills[3:]], target)  # the hostile-description skill is retired
    assert second == {
        "added": [],
        "updated": ["deployer-l-app-vite"],
        "removed": ["quote-safe-counting"],
        "skipped": [],
    }
    assert unchanged.stat().st_mtime_ns == before
    assert "1. Run `make deploy`" in (target / "deployer-l-app-vite" / "SKILL.md").read_text(encoding="utf-8")
    assert not (target / "quote-safe-counting").exists()
    for folder in target.iterdir():
        _assert_valid(folder)


def test_a_renamed_skill_leaves_no_old_folder(tmp_path: Path) -> None:
    skill = _library()[0]
    sync([skill], tmp_path)
    renamed = StoredSkill(skill.id, skill.skill.model_copy(update={"name": "Count JavaScript lines"}))
    report = sync([renamed], tmp_path)
    assert report["added"] == ["count-javascript-lines"] and report["removed"] == ["count-the-total-lines-of-js-code"]
    assert [p.name for p in tmp_path.iterdir()] == ["count-javascript-lines"]


def test_a_users_own_folders_and_files_are_never_touched(tmp_path: Path) -> None:
    mine = tmp_path / "count-the-total-lines-of-js-code"  # the user's skill, by the name skilld would use
    mine.mkdir()
    (mine / "SKILL.md").write_text("---\nname: count-the-total-lines-of-js-code\ndescription: mine\n---\n")
    other = tmp_path / "their-skill"
    other.mkdir()
    (other / "SKILL.md").write_text("---\nname: their-skill\ndescription: theirs\n---\n")
    (tmp_path / "restart-the-dev-server").write_text("a plain file")
    (tmp_path / "notes.txt").write_text("kept")
    skills = _library()[:1] + _library()[4:5] + _library()[2:3]

    assert export(skills, tmp_path)["skipped"] == ["count-the-total-lines-of-js-code", "restart-the-dev-server"]
    report = sync(_library()[2:3], tmp_path)
    assert report == {"added": [], "updated": [], "removed": [], "skipped": []}
    report = sync(skills, tmp_path)
    assert report["skipped"] == ["count-the-total-lines-of-js-code", "restart-the-dev-server"]
    sync([], tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "count-the-total-lines-of-js-code",
        "notes.txt",
        "restart-the-dev-server",
        "their-skill",
    ]
    assert (mine / "SKILL.md").read_text().endswith("description: mine\n---\n")
    assert (tmp_path / "restart-the-dev-server").read_text() == "a plain file"


def test_export_adds_without_removing_and_a_file_in_place_of_the_folder_is_one_clear_error(tmp_path: Path) -> None:
    skills = _library()
    export(skills[:2], tmp_path / "skills")
    assert export(skills[2:3], tmp_path / "skills")["exported"] == 1
    assert len(list((tmp_path / "skills").iterdir())) == 3
    (tmp_path / "file").write_text("")
    with pytest.raises(NotADirectoryError, match="is not a folder"):
        export(skills, tmp_path / "file")
