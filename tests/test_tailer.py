"""Following files safely while another process writes them: appends, half lines, rotation, truncation."""

from __future__ import annotations

import gzip
import json
import shutil
import textwrap
from pathlib import Path

import pytest

from daemon.app import Skilld
from daemon.loop import DaemonLoop
from tests.helpers import Daemon, numbered, rows, run_writer, write_lines


def _queries(home: Path) -> list[str]:
    return sorted(json.loads(r)["query"] for (r,) in rows(home, "SELECT record FROM events"))


def _expected(n: int, start: int = 0) -> list[str]:
    return sorted(f"question {i}" for i in range(start, start + n))


APPEND_WITH_HALF_LINES = textwrap.dedent("""
    import json, sys, time
    path, n = sys.argv[1], int(sys.argv[2])
    with open(path, "a") as f:
        for i in range(n):
            line = json.dumps({"event_type": "query", "query": f"question {i}", "success": True}) + "\\n"
            if i % 100 == 0:
                f.write(line[:10]); f.flush(); time.sleep(0.05)   # half a line, left for the reader to see
                f.write(line[10:])
            else:
                f.write(line)
            if i % 250 == 0:
                f.flush(); time.sleep(0.02)
""")


def test_lines_appended_by_another_process_are_stored_exactly_once(home: Path, telemetry: Path) -> None:
    with Daemon(home, telemetry) as daemon:
        writer = run_writer(APPEND_WITH_HALF_LINES, str(telemetry / "aidb-events.jsonl"), "3000")
        assert writer.wait(timeout=60) == 0
        status = daemon.wait_events(3000)
    assert (status["events"], status["dead_letters"], status["lag_bytes"]) == (3000, 0, 0)
    assert _queries(home) == _expected(3000)


ROTATE_BY_RENAME = textwrap.dedent("""
    import json, os, sys, time
    path = sys.argv[1]
    line = lambda i: json.dumps({"event_type": "query", "query": f"question {i}", "success": True}) + "\\n"
    f = open(path, "a")
    for i in range(500): f.write(line(i))
    f.flush(); time.sleep(1.0)
    os.rename(path, path + ".1")            # rotated; the writer still holds the old file
    for i in range(500, 600): f.write(line(i))
    f.close()
    with open(path, "w") as g:              # and starts a new one
        for i in range(600, 800): g.write(line(i))
""")


def test_a_file_rotated_by_rename_is_read_to_its_end_then_the_new_one(home: Path, telemetry: Path) -> None:
    with Daemon(home, telemetry) as daemon:
        assert run_writer(ROTATE_BY_RENAME, str(telemetry / "aidb-events.jsonl")).wait(timeout=60) == 0
        status = daemon.wait_events(800)
    assert (status["events"], status["dead_letters"]) == (800, 0)
    assert _queries(home) == _expected(800)


COPYTRUNCATE = textwrap.dedent("""
    import json, shutil, sys, time
    path = sys.argv[1]
    line = lambda i: json.dumps({"event_type": "query", "query": f"question {i}", "success": True}) + "\\n"
    with open(path, "a") as f:
        for i in range(300): f.write(line(i))
    time.sleep(1.0)
    shutil.copyfile(path, path + ".1")      # logrotate's copytruncate
    with open(path, "r+") as f:
        f.truncate(0)
    with open(path, "a") as f:
        f.write(line(0))                     # byte-identical to the old first line, yet a new event
        for i in range(300, 349): f.write(line(i))
""")


def test_copytruncate_then_new_content_gives_new_events_and_the_copy_adds_nothing(home: Path, telemetry: Path) -> None:
    with Daemon(home, telemetry) as daemon:
        assert run_writer(COPYTRUNCATE, str(telemetry / "aidb-events.jsonl")).wait(timeout=60) == 0
        status = daemon.wait_events(350)
    assert (status["events"], status["dead_letters"]) == (350, 0)
    assert _queries(home) == sorted([*_expected(300), "question 0", *(f"question {i}" for i in range(300, 349))])


RECREATE = textwrap.dedent("""
    import json, os, sys, time
    path = sys.argv[1]
    line = lambda i: json.dumps({"event_type": "query", "query": f"question {i}", "success": True}) + "\\n"
    with open(path, "w") as f:
        for i in range(100): f.write(line(i))
    time.sleep(1.0)
    os.unlink(path)
    with open(path, "w") as f:               # same name, maybe the same inode, other content
        for i in range(100, 150): f.write(line(i))
""")


def test_a_file_deleted_and_created_again_under_its_name_is_read_as_new(home: Path, telemetry: Path) -> None:
    with Daemon(home, telemetry) as daemon:
        assert run_writer(RECREATE, str(telemetry / "aidb-events.jsonl")).wait(timeout=60) == 0
        status = daemon.wait_events(150)
    assert status["events"] == 150
    assert _queries(home) == _expected(150)


def test_files_that_appear_while_running_are_followed_also_in_polling_mode(home: Path, telemetry: Path) -> None:
    with Daemon(home, telemetry, SKILLD_TELEMETRY__POLL="true") as daemon:
        write_lines(telemetry / "later" / "deeper" / "aidb-events.jsonl", numbered(20))
        status = daemon.wait_events(20)
    assert status["events"] == 20


def test_a_half_written_last_line_waits_for_its_end(app: Skilld, telemetry: Path) -> None:
    path = telemetry / "aidb-events.jsonl"
    first, second = (json.dumps(r) for r in numbered(2))
    path.write_text(first + "\n" + second[:15])
    loop = DaemonLoop(app)
    loop.step(scan=True)
    assert app.status()["events"] == 1 and app.status()["lag_bytes"] == 15
    with open(path, "a") as handle:
        handle.write(second[15:] + "\n")
    loop.step(scan=True)
    assert app.status()["events"] == 2 and app.status()["dead_letters"] == 0
    assert _queries(app.home) == _expected(2)


def test_byte_identical_lines_at_different_offsets_are_distinct_events(app: Skilld, telemetry: Path) -> None:
    write_lines(telemetry / "aidb-events.jsonl", numbered(1) * 3)
    app.ingest([telemetry])
    status = app.status()
    assert (status["events"], status["interactions"]) == (3, 3)


def test_ingesting_twice_or_a_copy_adds_nothing(app: Skilld, telemetry: Path, tmp_path: Path) -> None:
    write_lines(telemetry / "aidb-events.jsonl", numbered(50))
    assert app.ingest([telemetry]).events == 50
    assert app.ingest([telemetry]).events == 0
    elsewhere = tmp_path / "copy"
    elsewhere.mkdir()
    shutil.copy(telemetry / "aidb-events.jsonl", elsewhere / "renamed-copy.jsonl")
    report = app.ingest([elsewhere])
    assert (report.events, report.lines) == (0, 0)  # recognized as read already: not even re-read
    assert app.status()["events"] == 50


def test_a_small_file_keeps_its_identity_as_it_grows_past_any_window(
    app: Skilld, telemetry: Path, tmp_path: Path
) -> None:
    path = telemetry / "aidb-events.jsonl"
    write_lines(path, numbered(1))
    assert app.ingest([path]).events == 1
    write_lines(path, numbered(2000, start=1))  # far past 64 KiB
    assert path.stat().st_size > 128 * 1024
    assert app.ingest([path]).events == 2000
    shutil.copy(path, tmp_path / "grown-copy.jsonl")
    assert app.ingest([tmp_path / "grown-copy.jsonl"]).events == 0
    shorter = tmp_path / "older-copy.jsonl"
    shorter.write_bytes(path.read_bytes()[: path.read_bytes().index(b"\n", 50_000) + 1])
    assert app.ingest([shorter]).events == 0  # a copy taken earlier: every line is known
    assert app.status()["events"] == 2001


def test_gzip_rotations_are_read_for_backfill_without_repeating_lines(app: Skilld, telemetry: Path) -> None:
    path = telemetry / "aidb-events.jsonl"
    write_lines(path, numbered(300))
    assert app.ingest([telemetry]).events == 300
    write_lines(path, numbered(50, start=300))  # written after the last read, then rotated and compressed
    with open(path, "rb") as plain, gzip.open(telemetry / "aidb-events.jsonl.1.gz", "wb") as packed:
        shutil.copyfileobj(plain, packed)
    path.unlink()
    assert app.ingest([telemetry]).events == 50
    assert app.ingest([telemetry]).events == 0
    assert _queries(app.home) == _expected(350)


@pytest.mark.parametrize("name", ["a.jsonl", "a.jsonl.1", "a.jsonl-3", "a.jsonl.gz", "a.jsonl.2.gz"])
def test_rotated_names_are_telemetry_files(name: str) -> None:
    from daemon.sources.tailer import is_telemetry_file

    assert is_telemetry_file(name)


@pytest.mark.parametrize("name", ["a.json", "a.jsonl.bak", "notes.txt", ".jsonl.1"])
def test_other_names_are_not(name: str) -> None:
    from daemon.sources.tailer import is_telemetry_file

    assert not is_telemetry_file(name)
