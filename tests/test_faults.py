"""Faults a workstation really has, injected for real: the daemon stays up, says what is wrong, and resumes.

A size-limited tmpfs home filled while the daemon ingests and then enlarged, a telemetry folder made
unreadable (the daemon runs without the capability that lets root read anything) and removed, an LLM
endpoint that accepts connections and never answers, a truncated model file, and the daemon stopped
(SIGSTOP) for a minute as a suspended laptop is. Mounting needs root; those tests say so and skip elsewhere.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.helpers import Daemon, skilld, wait_for, write_lines

pytestmark = pytest.mark.slow

ROOT_ONLY = pytest.mark.skipif(os.geteuid() != 0, reason="mounting a size-limited tmpfs needs root")


def answers(n: int, start: int = 0, size: int = 3000) -> list[dict[str, object]]:
    """`n` question-and-answer events of about `size` bytes, none worth a skill (no feedback, no outcome)."""
    return [
        {"event_type": "query", "query": f"question {i}", "response": f"answer {i} " + "x" * size, "success": True}
        for i in range(start, start + n)
    ]


def problems(daemon: Daemon) -> list[dict[str, str]]:
    status = daemon.status()
    assert status["health"] == ("degraded" if status["problems"] else "ok")
    return list(status["problems"])


def degraded(daemon: Daemon, stage: str, kind: str) -> dict[str, str] | None:
    return next((p for p in problems(daemon) if p["stage"] == stage and p["kind"] == kind), None)


def alive(daemon: Daemon) -> None:
    assert daemon.process is not None and daemon.process.poll() is None, daemon.logs()


@pytest.fixture
def small_home(tmp_path: Path) -> Iterator[Path]:
    """A home on a 3 MB tmpfs, unmounted after the test."""
    home = tmp_path / "home"
    home.mkdir()
    try:
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m,mode=0700", "tmpfs", str(home)], check=True)
    except (OSError, subprocess.CalledProcessError) as exc:
        pytest.skip(f"cannot mount a tmpfs here: {exc}")
    try:
        yield home
    finally:
        subprocess.run(["umount", "-l", str(home)], check=False)


def enlarge(home: Path) -> None:
    subprocess.run(["mount", "-o", "remount,size=512m", str(home)], check=True)


@ROOT_ONLY
def test_a_full_disk_pauses_ingestion_and_it_resumes_when_space_is_freed(small_home: Path, telemetry: Path) -> None:
    write_lines(telemetry / "aidb-events.jsonl", answers(2000))  # about 6 MB: more than the home holds
    with Daemon(small_home, telemetry, SKILLD_TELEMETRY__BATCH_LINES="200") as daemon:
        wait_for(lambda: degraded(daemon, "ingest", "disk_full") is not None, 120, "the ingest stage degraded")
        problem = degraded(daemon, "ingest", "disk_full")
        assert problem is not None and "free space on" in problem["action"] and str(small_home) in problem["action"]
        time.sleep(3)  # backing off, the process alive and answering
        alive(daemon)
        stored = daemon.status()["events"]
        assert 0 < stored < 2000
        enlarge(small_home)
        wait_for(lambda: daemon.status()["events"] == 2000, 120, "every line stored")
        wait_for(lambda: daemon.status()["health"] == "ok", 120, f"health ok again: {problems(daemon)}")
        status = daemon.status()
        assert status["dead_letters"] == 0 and status["scored"] == 2000
    log = daemon.logs()
    assert log.count("stage degraded") == len({line for line in log.splitlines() if "stage degraded" in line})
    assert "Traceback" not in log


@ROOT_ONLY
def test_ingest_on_a_full_disk_says_so_in_one_line_and_loses_nothing(small_home: Path, telemetry: Path) -> None:
    write_lines(telemetry / "aidb-events.jsonl", answers(2000))
    failed = skilld(small_home, "ingest", "--no-learn", str(telemetry), check=False)
    assert failed.returncode == 1, failed.stderr
    lines = failed.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in failed.stderr
    assert lines[0].startswith(f"skilld: disk full writing {small_home}")
    assert lines[0].endswith(": free space and run the command again (nothing was lost)")
    enlarge(small_home)
    skilld(small_home, "ingest", "--no-learn", str(telemetry))
    status = json.loads(skilld(small_home, "status", "--json").stdout)
    assert status["events"] == 2000 and status["dead_letters"] == 0


@pytest.mark.skipif(
    shutil.which("setpriv") is None, reason="setpriv (util-linux) drops root's read-anything capability"
)
def test_an_unreadable_telemetry_folder_is_reported_and_read_once_restored(home: Path, telemetry: Path) -> None:
    folder = telemetry / "team"
    write_lines(telemetry / "aidb-events.jsonl", answers(5, size=10))
    write_lines(folder / "aidb-events.jsonl", answers(5, start=100, size=10))
    folder.chmod(0)
    # Without CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH, root reads by the file modes as any user does.
    unprivileged = ("setpriv", "--bounding-set", "-dac_override,-dac_read_search")
    try:
        with Daemon(home, telemetry, prefix=unprivileged) as daemon:
            wait_for(
                lambda: degraded(daemon, "telemetry", "unreadable") is not None, 60, "the telemetry stage degraded"
            )
            problem = degraded(daemon, "telemetry", "unreadable")
            assert problem is not None and str(folder) in problem["error"]
            assert daemon.status()["events"] == 5  # the readable file is read all the same
            folder.chmod(0o755)
            wait_for(lambda: daemon.status()["events"] == 10, 60, "the restored folder read")
            wait_for(lambda: daemon.status()["health"] == "ok", 60, "health ok again")
            alive(daemon)
    finally:
        folder.chmod(0o755)
    assert daemon.logs().count("cannot read telemetry") == 1  # said once, not at every rescan


def test_a_removed_telemetry_folder_is_reported_and_a_recreated_one_is_read(home: Path, tmp_path: Path) -> None:
    telemetry = tmp_path / "mounted"
    write_lines(telemetry / "aidb-events.jsonl", answers(5, size=10))
    with Daemon(home, telemetry) as daemon:
        daemon.wait_events(5)
        shutil.rmtree(telemetry)  # unmounted, or removed by a clean-up
        wait_for(lambda: degraded(daemon, "telemetry", "missing") is not None, 60, "the telemetry stage degraded")
        assert str(telemetry) in (degraded(daemon, "telemetry", "missing") or {})["error"]
        # Remounted as it was, then written on: the same file, whose first five lines are stored already.
        write_lines(telemetry / "aidb-events.jsonl", answers(5, start=0, size=10))
        write_lines(telemetry / "aidb-events.jsonl", answers(3, start=50, size=10))
        wait_for(lambda: daemon.status()["health"] == "ok", 60, "health ok again")
        wait_for(lambda: daemon.status()["events"] >= 8, 60, "the new lines read")
        time.sleep(1)
        alive(daemon)
        assert daemon.status()["events"] == 8  # nothing twice, nothing lost


class Silent:
    """A TCP server that accepts connections and never answers: an LLM endpoint that hangs."""

    def __init__(self) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.held: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self.server.accept()
            except OSError:
                return
            self.held.append(connection)

    def close(self) -> None:
        self.server.close()
        for connection in self.held:
            connection.close()


def ask_worth_a_skill(telemetry: Path) -> None:
    record = {"event_type": "completion", "extension": "ai", "success": True, "user_feedback": 1}
    record.update(prompt="How do I list every file with its size?", completion="Run `ls -la` in the folder.")
    write_lines(telemetry / "vscode-events.jsonl", [record])


def test_a_hanging_llm_endpoint_parks_the_item_and_never_blocks_the_api_or_a_stop(home: Path, telemetry: Path) -> None:
    silent = Silent()
    ask_worth_a_skill(telemetry)
    env = {
        "SKILLD_LLM__ENDPOINT": f"http://127.0.0.1:{silent.port}/v1",
        "SKILLD_LLM__TIMEOUT": "1",
        "SKILLD_EXTRACTION__MAX_ATTEMPTS": "2",
        "SKILLD_EXTRACTION__BACKOFF_SECONDS": "0.5",
    }
    try:
        with Daemon(home, telemetry, **env) as daemon:
            wait_for(
                lambda: degraded(daemon, "extraction", "endpoint") is not None, 120, "the extraction stage degraded"
            )
            url = daemon.status()["api"]["url"]
            start = time.monotonic()
            assert httpx.get(f"{url}/health", timeout=5).json()["health"] == "degraded"
            assert time.monotonic() - start < 2  # the API answers while a model call hangs
            wait_for(lambda: daemon.status()["parked_extractions"] == 1, 120, "the item parked")
            parked = daemon.status()["parked"]
            assert parked and "timed out" in json.dumps(parked).lower(), parked
            wait_for(lambda: daemon.status()["health"] == "ok", 60, "health ok once no item is left to try")
            alive(daemon)
            assert daemon.process is not None
            daemon.process.send_signal(signal.SIGTERM)
            start = time.monotonic()
            daemon.process.wait(timeout=30)
            assert time.monotonic() - start < 15 and daemon.process.returncode == 0
    finally:
        silent.close()


def test_a_truncated_model_file_parks_the_item_with_its_reason(home: Path, telemetry: Path, tmp_path: Path) -> None:
    from extractors.llama_cpp import bundled_model_path

    truncated = tmp_path / "model.gguf"
    with open(bundled_model_path(), "rb") as source:
        truncated.write_bytes(source.read(1_000_000))
    ask_worth_a_skill(telemetry)
    env = {
        "SKILLD_LLM__MODEL_PATH": str(truncated),
        "SKILLD_EXTRACTION__MAX_ATTEMPTS": "2",
        "SKILLD_EXTRACTION__BACKOFF_SECONDS": "0.5",
    }
    with Daemon(home, telemetry, **env) as daemon:
        wait_for(lambda: degraded(daemon, "extraction", "model") is not None, 120, "the extraction stage degraded")
        problem = degraded(daemon, "extraction", "model")
        assert problem is not None and problem["error"].startswith(f"cannot load {truncated}")
        wait_for(lambda: daemon.status()["parked_extractions"] == 1, 120, "the item parked")
        assert f"cannot load {truncated}" in json.dumps(daemon.status()["parked"])
        wait_for(lambda: daemon.status()["health"] == "ok", 60, "health ok once no item is left to try")
        alive(daemon)
        assert daemon.status()["events"] == 1


def test_a_suspended_daemon_resumes_and_reads_what_was_written_meanwhile(home: Path, telemetry: Path) -> None:
    write_lines(telemetry / "aidb-events.jsonl", answers(5, size=10))
    with Daemon(home, telemetry) as daemon:
        assert daemon.process is not None
        daemon.wait_events(5)
        daemon.process.send_signal(signal.SIGSTOP)  # a laptop's lid closed
        try:
            write_lines(telemetry / "aidb-events.jsonl", answers(5, start=5, size=10))
            time.sleep(60)
        finally:
            daemon.process.send_signal(signal.SIGCONT)
        wait_for(lambda: daemon.status()["events"] == 10, 60, "the lines written while suspended")
        time.sleep(1)
        status = daemon.status()
        assert status["events"] == 10 and status["health"] == "ok" and status["scored"] == 10
        alive(daemon)
