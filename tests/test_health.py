"""Health: faults told apart from bugs, backoff, and a log that says a fault once."""

from __future__ import annotations

import errno
import logging
import sqlite3
from pathlib import Path

import pytest

from daemon.faults import classify, command_line, internal
from daemon.health import MAX_BACKOFF, Health
from extractors.base import BackendError


def test_the_machine_s_faults_are_classified_with_what_to_do(tmp_path: Path) -> None:
    full = classify(sqlite3.OperationalError("database or disk is full"), tmp_path)
    assert full is not None and full.kind == "disk_full"
    assert full.error.startswith(f"disk full writing {tmp_path / 'skilld.db'} (") and "MB free on" in full.error
    assert "free space on" in full.action and "skilld needs 64 MB" in full.action
    assert command_line(full) == (
        f"disk full writing {tmp_path / 'skilld.db'}: free space and run the command again (nothing was lost)"
    )
    quota = classify(OSError(errno.EDQUOT, "Disk quota exceeded", str(tmp_path / "x")), tmp_path)
    assert quota is not None and quota.kind == "disk_full" and str(tmp_path / "x") in quota.error
    locked = classify(sqlite3.OperationalError("database is locked"), tmp_path / "skilld.db")
    assert locked is not None and locked.kind == "locked"
    denied = classify(PermissionError(errno.EACCES, "Permission denied", "/srv/telemetry"), tmp_path)
    assert denied is not None and denied.error == "cannot read /srv/telemetry: permission denied"
    gone = classify(FileNotFoundError(errno.ENOENT, "gone", "/mnt/nfs"), tmp_path)
    assert gone is not None and gone.kind == "missing" and "/mnt/nfs" in gone.action
    model = classify(BackendError("cannot load /m.gguf: Failed to load model from file"), tmp_path)
    assert model is not None and model.kind == "model" and "llm.model_path" in model.action
    endpoint = classify(BackendError("http://x/v1: ReadTimeout: timed out"), tmp_path)
    assert endpoint is not None and endpoint.kind == "endpoint"
    rust = classify(RuntimeError("Service internal error: No space left on device (os error 28)"), tmp_path)
    assert rust is not None and rust.kind == "disk_full"


def test_a_bug_is_not_a_fault_of_the_machine(tmp_path: Path) -> None:
    assert classify(KeyError("collection interaction-history is not open"), tmp_path) is None
    assert classify(sqlite3.OperationalError("no such table: events"), tmp_path) is None
    bug = internal(KeyError("x"))
    assert bug.kind == "internal" and bug.error == "KeyError: 'x'"


def test_backoff_doubles_to_a_minute_and_a_success_clears_it(tmp_path: Path) -> None:
    health = Health()
    fault = classify(sqlite3.OperationalError("database is locked"), tmp_path / "skilld.db")
    assert fault is not None
    waits = [health.fault("ingest", fault) for _ in range(10)]
    assert waits[:4] == [1.0, 2.0, 4.0, 8.0] and waits[-1] == MAX_BACKOFF
    assert health.report()["health"] == "degraded" and health.waiting("ingest") and not health.waiting("scoring")
    [problem] = health.report()["problems"]
    assert problem["stage"] == "ingest" and problem["kind"] == "locked" and problem["since"]
    health.ok("ingest")
    assert health.report() == {"health": "ok", "problems": []}


def test_the_log_says_a_fault_once_not_once_per_retry_nor_per_flap(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    health = Health()
    fault = classify(sqlite3.OperationalError("database is locked"), tmp_path / "skilld.db")
    assert fault is not None
    with caplog.at_level(logging.INFO, logger="daemon.health"):
        for _ in range(5):
            health.fault("ingest", fault)
        health.ok("ingest")
        health.fault("ingest", fault)  # back at once: the same fault, flapping
        health.ok("ingest")
    messages = [r.getMessage() for r in caplog.records]
    assert messages == ["stage degraded", "stage resumed"]


def test_a_database_from_a_newer_skilld_ends_a_command_and_the_daemon_with_one_line(tmp_path: Path) -> None:
    from storage.db import MIGRATIONS
    from tests.helpers import skilld

    home = tmp_path / "home"
    home.mkdir()
    conn = sqlite3.connect(home / "skilld.db")
    conn.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
    conn.close()
    for command in (["status"], ["run"]):
        done = skilld(home, *command, check=False, timeout=60)
        assert done.returncode == 1, done.stderr
        assert done.stderr.strip().splitlines() == [
            f"skilld: database schema v{len(MIGRATIONS) + 1} is newer than this skilld (v{len(MIGRATIONS)}); "
            "upgrade skilld"
        ]
