"""skilld as a service: the real daemon's HTTP API, token, metrics, feedback, signals and systemd notifications."""

from __future__ import annotations

import http.client
import json
import signal
import socket
import sqlite3
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.helpers import SKILLD, Daemon, cli_env, continue_chat, numbered, rows, skilld_json, wait_for, write_lines

pytestmark = pytest.mark.slow

CONTINUE = Path("dev_data") / "0.2.0"


def _chat(session: str, prompt: str, completion: str, user: str = "alice") -> dict[str, Any]:
    return continue_chat(session, prompt, completion, user)


def _api(daemon: Daemon) -> str:
    url = daemon.status()["api"]["url"]
    assert url and url.startswith("http://127.0.0.1:")
    return str(url)


def _token(home: Path) -> dict[str, str]:
    return {"Authorization": f"Bearer {(home / 'api.token').read_text().strip()}"}


def test_the_api_serves_health_status_search_metrics_and_authorized_feedback(home: Path, telemetry: Path) -> None:
    write_lines(
        telemetry / CONTINUE / "chatInteraction.jsonl",
        [
            _chat("s1", "How do I undo my last git commit but keep the changes?", "Run `git reset --soft HEAD~1`."),
            _chat("s2", "what time is it", "I cannot know.", user="bob"),
        ],
    )
    write_lines(
        telemetry / CONTINUE / "autocomplete.jsonl",
        [
            {
                "eventName": "autocomplete",
                "schema": "0.2.0",
                "completionId": "c-42",
                "prompt": "def add(",
                "accepted": True,
            }
        ],
    )
    with Daemon(home, telemetry) as daemon:
        # The two chats are scored; the autocomplete is an acceptance signal, never scored.
        wait_for(lambda: daemon.status()["scored"] >= 2, 120, "two scored interactions")
        url = _api(daemon)
        client = httpx.Client(base_url=url, timeout=30)
        assert client.get("/health").json() == {"status": "ok", "health": "ok", "problems": []}
        assert client.get("/ready").status_code == 200
        # Reads need the token too, over TCP: another local user could otherwise read the questions.
        assert client.get("/v1/status").status_code == 401
        assert client.get("/v1/status", headers=_token(home)).json()["events"] == 3
        schema = client.get("/openapi.json").json()
        assert {"/health", "/ready", "/v1/status", "/v1/search", "/v1/feedback", "/metrics"} <= set(schema["paths"])

        # The same search as the command line.
        question = "revert a commit in git"
        assert client.get("/v1/search", params={"q": question}).status_code == 401
        served = client.get("/v1/search", params={"q": question}, headers=_token(home)).json()
        found = skilld_json(home, "search", question, env=daemon.env)
        assert [(h["id"], h["score"]) for h in served] == [(h["id"], h["score"]) for h in found]
        assert client.get("/v1/search", headers=_token(home)).status_code == 422

        # Writes need the token: none, a wrong one, then the right one.
        body = {
            "rating": "down",
            "session_id": "s1",
            "prompt": "How do I undo my last git commit but keep the changes?",
        }
        missing = client.post("/v1/feedback", json=body)
        assert missing.status_code == 401 and "bearer token" in missing.json()["error"]
        assert client.post("/v1/feedback", json=body, headers={"Authorization": "Bearer nope"}).status_code == 401
        assert client.post("/v1/commands/status", json={}).status_code == 401

        ((chat_event,),) = rows(home, "SELECT id FROM events WHERE user_hash IS NOT NULL ORDER BY seq LIMIT 1")
        before = skilld_json(home, "explain", chat_event, env=daemon.env)["score"]
        answer = client.post("/v1/feedback", json=body, headers=_token(home))
        assert answer.status_code == 200, answer.text
        after = answer.json()["score"]["score"]
        assert after < before and skilld_json(home, "explain", chat_event, env=daemon.env)["score"] == after
        up = client.post("/v1/feedback", json={"rating": "up", "event_id": chat_event}, headers=_token(home))
        assert up.json()["score"]["score"] > after

        completion = client.post("/v1/feedback", json={"rating": "up", "completion_id": "c-42"}, headers=_token(home))
        assert completion.status_code == 200 and completion.json()["interaction"] == "continue:autocomplete:c-42"
        assert completion.json()["score"] is None and daemon.status()["scored"] == 2  # recorded, not a question

        # Bad requests: 4xx with a reason.
        for bad, status, reason in [
            ({"rating": "sideways", "event_id": chat_event}, 422, "rating"),
            ({"rating": "up"}, 422, "address the interaction one way"),
            ({"rating": "up", "session_id": "s1"}, 422, "session_id and prompt go together"),
            ({"rating": "up", "event_id": "no-such-event"}, 404, "no event or interaction"),
            ({"rating": "up", "completion_id": "c-0"}, 404, "no Continue completion"),
        ]:
            response = client.post("/v1/feedback", json=bad, headers=_token(home))
            assert response.status_code == status and reason in response.json()["error"], response.text
        assert client.post("/v1/commands/nothing", json={}, headers=_token(home)).status_code == 404
        leaked = client.post(
            "/v1/feedback", json={"rating": "up", "event_id": 1, "secret": "hunter2"}, headers=_token(home)
        )
        assert leaked.status_code == 422 and "hunter2" not in leaked.text  # errors never echo the request
        rebinding = client.get("/v1/status", headers={"Host": "evil.example"})
        assert rebinding.status_code == 400  # a page served from another name cannot read the API

        # Prometheus exposition, read back with Prometheus's own parser.
        exposition = client.get("/metrics")
        assert exposition.headers["content-type"].startswith("text/plain")
        families = {f.name: f for f in text_string_to_metric_families(exposition.text)}
        expected = {
            "skilld_events",
            "skilld_dead_letters",
            "skilld_lag_bytes",
            "skilld_extraction_queue",
            "skilld_extraction_seconds",
            "skilld_extraction_failures",
            "skilld_value_score",
            "skilld_skills",
            "skilld_dataset_examples",
            "skilld_finetune_runs",
        }
        assert expected <= set(families)
        assert families["skilld_events"].type == "gauge"  # retention and forget delete events
        events = {s.labels["source"]: s.value for s in families["skilld_events"].samples}
        assert events == {"continue": 3.0}
        scores = {s.name: s.value for s in families["skilld_value_score"].samples if not s.labels.get("le")}
        assert scores["skilld_value_score_count"] == daemon.status()["scored"]
        stored = [score for (score,) in rows(home, "SELECT score FROM scores")]
        assert scores["skilld_value_score_sum"] == pytest.approx(sum(stored))
        buckets = {s.labels["le"]: s.value for s in families["skilld_value_score"].samples if s.labels.get("le")}
        assert buckets["0.5"] == sum(1 for score in stored if score <= 0.5) and buckets["+Inf"] == len(stored)
        skills = daemon.status()["skills"]
        assert families["skilld_skills"].samples[0].value == skills

        # The same API on the daemon's unix socket, the one the CLI uses.
        connection = http.client.HTTPConnection("localhost")
        connection.sock = socket.socket(socket.AF_UNIX)
        connection.sock.connect(str(home / "skilld.sock"))
        connection.request("GET", "/health")
        assert json.loads(connection.getresponse().read()) == {"status": "ok", "health": "ok", "problems": []}
        connection.close()
    assert stat_mode(home / "api.token") == 0o600


def stat_mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


def _stored(home: Path) -> int:
    try:
        return int(rows(home, "SELECT COUNT(*) FROM events")[0][0])
    except sqlite3.OperationalError:  # not created (or migrated) yet
        return 0


def test_sigterm_drains_the_batch_in_flight_and_exits_zero(home: Path, telemetry: Path) -> None:
    lines = 150_000
    write_lines(telemetry / "aidb-events.jsonl", numbered(lines))
    env = cli_env(home, SKILLD_TELEMETRY__PATHS=json.dumps([str(telemetry)]))
    process = subprocess.Popen([*SKILLD, "run"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    wait_for(lambda: _stored(home) > 0, 120, "the first events")
    process.send_signal(signal.SIGTERM)
    output, _ = process.communicate(timeout=30)  # the unit's stop timeout
    assert process.returncode == 0, output
    ((stored,),) = rows(home, "SELECT COUNT(*) FROM events")
    ((offset,),) = rows(home, 'SELECT "offset" FROM files')
    # What was committed is whole: the saved offset is exactly after the last stored line.
    assert 0 < stored < lines and offset == len("".join(json.dumps(r) + "\n" for r in numbered(stored)))
    assert skilld_json(home, "ingest", "--no-learn", str(telemetry))["events"] == lines - stored
    assert rows(home, "SELECT COUNT(*), COUNT(DISTINCT id) FROM events") == [(lines, lines)]


def test_sighup_reloads_the_configuration_and_keeps_it_when_the_new_one_is_bad(home: Path, tmp_path: Path) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    write_lines(first / "aidb-events.jsonl", numbered(3))
    write_lines(second / "aidb-events.jsonl", numbered(4, start=100))
    config = tmp_path / "skilld.toml"
    config.write_text(f'[telemetry]\npaths = ["{first}"]\npoll_interval = 0.1\n')
    daemon = Daemon(home, first, SKILLD_CONFIG=str(config))
    daemon.env.pop("SKILLD_TELEMETRY__PATHS")  # the paths come from the file
    with daemon:
        assert daemon.wait_events(3)["events"] == 3
        config.write_text(f'[telemetry]\npaths = ["{first}", "{second}"]\npoll_interval = 0.1\n')
        assert daemon.process is not None
        daemon.process.send_signal(signal.SIGHUP)
        assert daemon.wait_events(7)["events"] == 7
        config.write_text("[scoring]\nthreshold = 7\n")
        daemon.process.send_signal(signal.SIGHUP)
        wait_for(lambda: "configuration not reloaded" in daemon.logs(), 30, "the refusal")
        assert "scoring.threshold" in daemon.logs()
        config.unlink()
        daemon.process.send_signal(signal.SIGHUP)
        wait_for(lambda: f"file {config} is gone" in daemon.logs(), 30, "the refusal of a vanished file")
        write_lines(second / "aidb-events.jsonl", numbered(1, start=200))
        daemon.env.pop("SKILLD_CONFIG")  # the command line would refuse the bad file too
        assert daemon.wait_events(8)["events"] == 8  # still running, on the configuration it had
    assert daemon.process.returncode == 0


def test_systemd_is_told_ready_reloading_and_stopping_and_the_watchdog_is_fed(home: Path, telemetry: Path) -> None:
    notify = home.parent / "notify.sock"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    listener.bind(str(notify))
    listener.settimeout(60)
    messages: list[str] = []

    def until(field: str) -> None:
        while True:
            messages.append(listener.recv(4096).decode())
            if field in messages[-1].splitlines():
                return

    with Daemon(home, telemetry, NOTIFY_SOCKET=str(notify), WATCHDOG_USEC="300000") as daemon:
        until("READY=1")
        assert daemon.process is not None
        assert f"MAINPID={daemon.process.pid}" in messages[-1].splitlines()
        url = _api(daemon)
        assert httpx.get(f"{url}/ready").status_code == 200  # ready when systemd is told so
        started = len(messages)
        time.sleep(1.5)
        until("WATCHDOG=1")
        until("WATCHDOG=1")
        assert len(messages) > started + 1
        daemon.process.send_signal(signal.SIGHUP)
        until("RELOADING=1")
        assert any(line.startswith("MONOTONIC_USEC=") for line in messages[-1].splitlines())
        until("READY=1")
        daemon.process.send_signal(signal.SIGTERM)
        until("STOPPING=1")
        daemon.process.wait(timeout=30)
        assert daemon.process.returncode == 0
    listener.close()
