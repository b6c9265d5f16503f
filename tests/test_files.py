"""storage/files.py: a replaced file is the old content or the new, owner-only, with no temporary left."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from storage.files import append_line, replacing, write_atomic


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_file_is_replaced_whole_and_owner_only(tmp_path: Path) -> None:
    target = tmp_path / "skills.jsonl"
    target.write_text("old\n")
    target.chmod(0o644)
    write_atomic(target, ["one\n", "two\n"])
    assert target.read_text() == "one\ntwo\n" and _mode(target) == 0o600
    write_atomic(target, b"bytes\n")
    assert target.read_bytes() == b"bytes\n"
    assert [p.name for p in tmp_path.iterdir()] == ["skills.jsonl"]  # no temporary file left


def test_an_error_while_writing_leaves_the_old_content_and_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "adapter.gguf"
    target.write_bytes(b"previous")

    def broken() -> list[str]:
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"), replacing(target) as partial:
        partial.write_bytes(b"half")
        broken()
    assert target.read_bytes() == b"previous"
    assert [p.name for p in tmp_path.iterdir()] == ["adapter.gguf"]


def test_appended_lines_land_in_order_in_an_owner_only_file_and_folder(tmp_path: Path) -> None:
    target = tmp_path / "datasets" / "finetune.jsonl"
    append_line(target, '{"a": 1}')
    append_line(target, '{"a": 2}')
    assert target.read_text() == '{"a": 1}\n{"a": 2}\n'
    assert _mode(target) == 0o600 and _mode(target.parent) == 0o700
