"""Killed at any instant and restarted, ingestion ends with every line in the store exactly once."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.helpers import ROOT, SKILLD, cli_env, rows, skilld_json


def _write_big_file(path: Path, lines: int) -> tuple[dict[int, str], set[int]]:
    """A telemetry file; returns the query at each valid line's offset, and the offsets of bad lines."""
    rng = random.Random(path.name)
    valid: dict[int, str] = {}
    bad: set[int] = set()
    offset = 0
    with open(path, "wb") as handle:
        for i in range(lines):
            if rng.random() < 0.002:
                data = b'{"event_type": "query", "query": broken'
                bad.add(offset)
            else:
                query = f"{path.name} question {i} " + "x" * rng.randint(0, 300)
                data = json.dumps({"event_type": "query", "query": query, "success": True}).encode()
                valid[offset] = query
            handle.write(data + b"\n")
            offset += len(data) + 1
    return valid, bad


@pytest.mark.slow
@pytest.mark.parametrize("workers", ["1", "2"])
def test_sigkill_at_random_moments_then_restart_stores_every_line_exactly_once(tmp_path: Path, workers: str) -> None:
    telemetry, home = tmp_path / "telemetry", tmp_path / "home"
    telemetry.mkdir()
    valid_a, bad_a = _write_big_file(telemetry / "aidb-events.jsonl", 100_000)
    valid_b, bad_b = _write_big_file(telemetry / "b-aidb.jsonl", 100_000)
    env = cli_env(home, SKILLD_TELEMETRY__INGEST_WORKERS=workers, SKILLD_TELEMETRY__BATCH_LINES="500")
    rng = random.Random(int(workers))
    kills = 0
    for _ in range(5):
        process = subprocess.Popen(
            [*SKILLD, "ingest", "--no-learn", str(telemetry)],
            env=env,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(rng.uniform(0.2, 0.9))  # start-up takes ~0.4 s, the whole ingest ~5 s
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
            kills += 1
        process.wait()
    assert kills >= 3, "the ingest finished before it could be killed often enough; make the file larger"
    final = skilld_json(home, "ingest", "--no-learn", str(telemetry), env=env)
    assert final["pending_bytes"] == 0
    stored = rows(home, 'SELECT f.path, e."offset", e.record FROM events e JOIN files f ON f.id = e.file_id')
    by_file: dict[str, dict[int, str]] = {}
    for path, offset, record in stored:
        assert offset not in by_file.setdefault(path, {}), f"offset {offset} of {path} stored twice"
        by_file[path][offset] = json.loads(record)["query"]
    assert by_file[str(telemetry / "aidb-events.jsonl")] == valid_a
    assert by_file[str(telemetry / "b-aidb.jsonl")] == valid_b
    letters = rows(home, 'SELECT f.path, d."offset" FROM dead_letters d JOIN files f ON f.id = d.file_id')
    assert sorted(letters) == sorted(
        [(str(telemetry / "aidb-events.jsonl"), o) for o in bad_a]
        + [(str(telemetry / "b-aidb.jsonl"), o) for o in bad_b]
    )
    status = skilld_json(home, "status", env=env)
    assert status["events"] == len(valid_a) + len(valid_b)
    assert sum(s["lines"] for s in status["sources"]) == 200_000
