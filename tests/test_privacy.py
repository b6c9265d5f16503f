"""Redaction of planted secrets and personal data, keyed user hashing, and nothing secret on disk."""

from __future__ import annotations

import json
import os
import signal
import stat
from pathlib import Path

import httpx
import orjson
import pytest

from daemon.privacy import Privacy, Redactor, UserHasher
from tests.helpers import Daemon, cli_env, continue_chat, skilld, wait_for, write_lines
from tests.secrets_corpus import HARMLESS, PLANTED


@pytest.fixture(scope="module")
def redactor() -> Redactor:
    return Redactor()


@pytest.mark.parametrize(("text", "secret", "kind"), PLANTED, ids=[f"{k}-{i}" for i, (_, _, k) in enumerate(PLANTED)])
def test_each_planted_secret_becomes_its_typed_placeholder(
    redactor: Redactor, text: str, secret: str, kind: str
) -> None:
    out = redactor.text(text)
    assert secret not in out
    assert f"[REDACTED:{kind}]" in out


@pytest.mark.parametrize("text", HARMLESS)
def test_harmless_text_is_left_alone(redactor: Redactor, text: str) -> None:
    assert redactor.text(text) == text


def test_values_under_secret_named_keys_are_replaced_whole(redactor: Redactor) -> None:
    value = {"password": "abc", "nested": [{"client_secret": "xyz"}], "max_tokens": "12", "note": "fine"}
    assert redactor.value(value) == {
        "password": "[REDACTED:SECRET]",
        "nested": [{"client_secret": "[REDACTED:SECRET]"}],
        "max_tokens": "12",
        "note": "fine",
    }


@pytest.mark.parametrize(("text", "secret", "kind"), PLANTED)
@pytest.mark.parametrize("layout", ["plain", "after_newline", "escaped_slashes", "unicode_escapes", "as_key"])
def test_the_raw_line_prefilter_never_lets_a_secret_through(
    tmp_path: Path, text: str, secret: str, kind: str, layout: str
) -> None:
    privacy = Privacy(Redactor(), UserHasher(b"k" * 32), ["userId"])
    record: dict[str, object] = {"prompt": "x\n" + text if layout == "after_newline" else text}
    if layout == "as_key":
        record = {"wrapper": {"token": secret}} if kind == "SECRET" else record
    raw = orjson.dumps(record)
    if layout == "escaped_slashes":
        raw = raw.replace(b"/", b"\\/")
    if layout == "unicode_escapes":
        raw = json.dumps(record, ensure_ascii=True).replace("@", "\\u0040").encode()
    parsed = orjson.loads(raw)
    safe, _, _ = privacy.record(parsed, raw)
    assert secret not in orjson.dumps(safe).decode()


def test_user_ids_are_hashed_with_a_per_install_key(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    one, two = UserHasher.from_home(tmp_path / "a"), UserHasher.from_home(tmp_path / "b")
    assert one.hash("alice") == UserHasher.from_home(tmp_path / "a").hash("alice")
    assert one.hash("alice") != one.hash("bob")
    assert one.hash("alice") != two.hash("alice")
    assert "alice" not in one.hash("alice")
    assert stat.S_IMODE((tmp_path / "a" / "secret.key").stat().st_mode) == 0o600


def _all_bytes_under(root: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file())


def test_no_planted_secret_reaches_sqlite_logs_or_any_file_under_home(tmp_path: Path) -> None:
    telemetry, home = tmp_path / "telemetry", tmp_path / "home"
    lines: list[object] = []
    for i, (text, _, _) in enumerate(PLANTED):
        lines.append(continue_chat(f"s{i}", text, text, "alice@example.com"))
        lines.append('{"prompt": ' + json.dumps(text) + ", broken")  # invalid JSON: a dead letter
        lines.append({"eventName": ["x"], "schema": "0.2.0", "prompt": text})  # unreadable: a dead letter
    write_lines(telemetry / "dev_data" / "0.2.0" / "chatInteraction.jsonl", lines)
    env = cli_env(home, SKILLD_LOGGING__LEVEL="debug", SKILLD_TELEMETRY__PATHS=json.dumps([str(telemetry)]))
    result = skilld(home, "ingest", "--json", str(telemetry), env=env)
    report = json.loads(result.stdout)
    assert report["events"] == len(PLANTED) and report["dead_letters"] == 2 * len(PLANTED)
    listed = skilld(home, "deadletters", "list", "--json", env=env).stdout
    stored = _all_bytes_under(home) + result.stdout.encode() + result.stderr.encode() + listed.encode()
    for _, secret, _ in [*PLANTED, ("", "alice@example.com", "")]:
        assert secret.encode() not in stored, secret
    for path in home.rglob("*"):
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode & 0o077 == 0, f"{path} is {oct(mode)}"
    assert os.stat(home).st_mode & 0o077 == 0


def test_the_daemons_json_logs_and_api_answers_never_carry_a_secret(home: Path, telemetry: Path) -> None:
    lines = [continue_chat(f"s{i}", text, text, "alice@example.com") for i, (text, _, _) in enumerate(PLANTED)]
    write_lines(telemetry / "dev_data" / "0.2.0" / "chatInteraction.jsonl", lines)
    with Daemon(home, telemetry, SKILLD_LOGGING__LEVEL="debug", SKILLD_LOGGING__FORMAT="json") as daemon:
        daemon.wait_events(len(PLANTED))
        url = daemon.status()["api"]["url"]
        token = {"Authorization": f"Bearer {(home / 'api.token').read_text().strip()}"}
        answers = []
        for i, (text, _, _) in enumerate(PLANTED):
            feedback = {"rating": "down", "session_id": f"s{i}", "prompt": text, "correction": text}
            answer = httpx.post(f"{url}/v1/feedback", json=feedback, headers=token, timeout=60)
            assert answer.status_code == 200, answer.text  # found by the redacted prompt, as stored
            answers.append(answer.text)
        answers.append(skilld(home, "forget", "--user", "alice@example.com", "--json", env=daemon.env).stdout)
        assert daemon.process is not None
        daemon.process.send_signal(signal.SIGHUP)
        wait_for(lambda: "configuration reloaded" in daemon.logs(), 30, "the reload")
    logs = daemon.logs()
    entries = [json.loads(line) for line in logs.splitlines() if line.strip()]
    assert {"stopping", "skilld stopped", "user forgotten"} <= {e["message"] for e in entries}
    seen = logs + "".join(answers) + _all_bytes_under(home).decode("utf-8", "replace")
    for _, secret, _ in [*PLANTED, ("", "alice@example.com", "")]:
        assert secret not in seen, secret
