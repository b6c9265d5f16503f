"""Is it learning? Drift, failure clusters, knowledge gaps and the report on telemetry whose truth is planted:
Continue chats written at chosen times with chosen thumbs, read, scored and embedded by the real pipeline.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from daemon.app import Skilld
from storage.skills import Evidence

pytestmark = pytest.mark.slow

TOPICS = {
    "venv": [
        "how do I create a python virtual environment",
        "set up a venv for my python project",
        "what's the command to make a virtualenv in python 3",
        "isolate my python project's packages in a venv",
        "python venv setup for a new repo",
        "create and activate a virtual environment for python",
    ],
    "git": [
        "how do I undo my last git commit but keep the changes",
        "revert the previous commit without losing my edits",
        "git: take back the last commit, keep the work",
        "undo a commit I just made in git",
        "reset the last commit but keep files staged",
        "remove the latest commit and keep my changes",
    ],
    "pytest": [
        "run a single test with pytest",
        "how to run only one test function in pytest",
        "pytest select tests by name",
        "execute just the failing test with pytest",
        "run tests matching a keyword in pytest",
        "filter which pytest tests run",
    ],
}
DOCKER = [
    "docker build fails with permission denied on /var/run/docker.sock",
    "got permission denied while trying to connect to the docker daemon socket",
    "docker ps says permission denied connecting to docker.sock",
    "why does docker need sudo, permission denied on the docker socket",
    "docker compose up: permission denied /var/run/docker.sock",
    "cannot connect to docker daemon socket permission denied as my user",
]
NGINX = [
    "rotate nginx logs every day",
    "how do I set up daily log rotation for nginx",
    "nginx access.log keeps growing, rotate it daily",
    "configure logrotate for nginx logs",
    "daily rotation of nginx error and access logs",
    "keep a week of nginx logs with rotation",
    "logrotate config for /var/log/nginx",
]
ANSWER = "Run this:\n\n```bash\n{command}\n```\n\nThen check the result with `echo $?`; it prints 0 on success."


def _chat(session: str, prompt: str, at: datetime, thumb: bool | None) -> list[dict[str, Any]]:
    chat = {
        "eventName": "chatInteraction",
        "schema": "0.2.0",
        "sessionId": session,
        "timestamp": at.isoformat().replace("+00:00", "Z"),
        "prompt": prompt,
        "completion": ANSWER.format(command=f"do-the-thing --for '{prompt[:30]}'"),
    }
    return [chat] if thumb is None else [chat, {**chat, "eventName": "chatFeedback", "feedback": thumb}]


def _write(telemetry: Path, chats: list[list[dict[str, Any]]]) -> None:
    folder = telemetry / "dev_data" / "0.2.0"
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("chatInteraction", "chatFeedback"):
        lines = [json.dumps(r) for chat in chats for r in chat if r["eventName"] == name]
        with open(folder / f"{name}.jsonl", "a", encoding="utf-8") as handle:
            handle.write("".join(line + "\n" for line in lines))


def _window(prefix: str, start: datetime, days: float, prompts: list[str], thumb: bool | None) -> list[list[Any]]:
    step = timedelta(days=days) / max(1, len(prompts))
    return [_chat(f"{prefix}-{n}", p, start + step * n, thumb) for n, p in enumerate(prompts)]


def _score(app: Skilld, telemetry: Path, embedder: Any) -> None:
    app.learner._embedder = embedder
    app.ingest([telemetry], learn=False)
    while app.learner.score_batch():
        pass


def _asked(copies: int) -> list[str]:
    return [f"{q} ({n})" for n in range(copies) for qs in TOPICS.values() for q in qs]


NOW = datetime.now(UTC)


def test_a_stable_stream_shows_no_drift_and_a_shift_in_scores_and_topics_does(
    app: Skilld, telemetry: Path, embedder: Any
) -> None:
    reference = _window("ref", NOW - timedelta(days=30), 20, _asked(3), True)  # 54 chats, thumbs up
    recent = _window("new", NOW - timedelta(days=6), 5, _asked(3), True)
    _write(telemetry, reference + recent)
    _score(app, telemetry, embedder)
    stable = {c["name"]: c for c in app.check_drift()["checks"]}
    assert not any(c["drifted"] for c in stable.values()), stable
    assert all(c["reference"] >= 50 and c["recent"] >= 50 for c in stable.values()), stable

    # Later, the same person asks about something else, and it goes badly.
    shifted = _window("bad", NOW - timedelta(days=3), 2, [f"{q} ({n})" for n in range(9) for q in DOCKER], False)
    _write(telemetry, shifted)
    _score(app, telemetry, embedder)
    checks = {c["name"]: c for c in app.check_drift()["checks"]}
    assert checks["value_score"]["drifted"] and checks["value_score"]["psi"] >= 0.2, checks["value_score"]
    assert checks["topic_mix"]["drifted"], checks["topic_mix"]
    assert app.status()["drift"]["checks"][0]["name"] == "value_score"


def test_planted_failures_come_back_as_a_cluster_and_an_unanswered_topic_is_the_top_gap(
    app: Skilld, telemetry: Path, embedder: Any
) -> None:
    happy = _window("ok", NOW - timedelta(days=10), 8, _asked(1), True)
    failing = _window("fail", NOW - timedelta(days=5), 3, DOCKER, False)
    unanswered = _window("gap", NOW - timedelta(days=4), 3, NGINX, None)
    _write(telemetry, happy + failing + unanswered)
    _score(app, telemetry, embedder)
    # The venv topic has a skill; nginx has none.
    venv = {
        "name": "Create a Python virtual environment",
        "description": "Make an isolated environment for a project's packages.",
        "prerequisites": [],
        "steps": ["Run `python3 -m venv .venv`", "Activate it with `source .venv/bin/activate`"],
        "tags": ["python", "venv"],
        "example": "python3 -m venv .venv",
    }
    app.learner.library.add(Evidence(venv, "test:venv", [], TOPICS["venv"][0], True, 0.8, "v2", "test", None))

    clusters = app.failures(30)
    assert clusters, "the planted failures form a cluster"
    top = clusters[0]
    assert top["size"] >= 5 and all("docker" in q for q in top["questions"]), top
    assert any("negative feedback" in trait for trait in top["shared"]), top["shared"]
    assert not any("venv" in q for c in clusters for q in c["questions"])  # successes are never failures

    found = app.gaps(30)
    assert found and "nginx" in found[0]["topic"] and found[0]["asked"] >= 5, found
    assert not any("venv" in g["topic"] or "virtual" in g["topic"] for g in found), found


def test_the_report_is_written_with_its_verdict_and_valid_figures(
    app: Skilld, telemetry: Path, embedder: Any, tmp_path: Path
) -> None:
    _write(telemetry, _window("ok", NOW - timedelta(days=3), 2, _asked(1), True))
    _score(app, telemetry, embedder)
    result = app.report(tmp_path / "out", 30)
    page = Path(result["path"]).read_text()
    assert result["verdict"] and result["verdict"][0] in page
    assert page.count("data:image/png;base64,") >= 8
    import base64
    import io
    import re

    for data in re.findall(r"data:image/png;base64,([A-Za-z0-9+/=]+)", page):
        Image.open(io.BytesIO(base64.b64decode(data))).verify()
    assert (Path(result["path"]).stat().st_mode & 0o777) == 0o600
    assert app.report(None, 30)["path"] == str(app.home / "report" / "report.html")


def test_the_api_serves_the_latest_report_and_the_metrics_count_drift(
    app: Skilld, telemetry: Path, embedder: Any
) -> None:
    from fastapi.testclient import TestClient

    from daemon.api import create_api
    from daemon.metrics import Metrics

    metrics = Metrics(app.home)
    app.on_drift = metrics.record_drift  # as `skilld run` wires it
    client = TestClient(
        create_api(app, metrics, "a-token"), base_url="http://127.0.0.1", headers={"Authorization": "Bearer a-token"}
    )
    missing = client.get("/report")
    assert missing.status_code == 404 and "skilld report" in missing.json()["error"]
    _write(telemetry, _window("ok", NOW - timedelta(days=3), 2, _asked(1), True))
    _score(app, telemetry, embedder)
    app.report(None, 30)
    page = client.get("/report")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "Is skilld learning?" in page.text
    app.check_drift()
    text = client.get("/metrics").text
    assert "skilld_drift_checks_total 1.0" in text
    assert 'skilld_drift_detected{check="topic_mix"} 0.0' in text  # too few interactions for a verdict
    assert 'skilld_drift_measured{check="topic_mix"} 0.0' in text
    metrics.close()
