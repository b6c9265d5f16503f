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


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("x = 4111111111111111", "x = 4111111111111111"),  # a bare run of digits in code is a constant
        ("charge the card 4111111111111111 now", "charge the card [REDACTED:CARD] now"),
        ("cardNumber: '4111111111111111'", "cardNumber: '[REDACTED:CARD]'"),
        ("4111 1111 1111 1111", "[REDACTED:CARD]"),  # grouped as printed on a card
        ("4111-1111-1111-1111 12/27 cvv 123", "[REDACTED:CARD] 12/27 cvv 123"),  # the expiry is kept
        ("3056 930902 5904 diners", "[REDACTED:CARD] diners"),
        ("1234 5678 9012 3452", "1234 5678 9012 3452"),  # grouped and Luhn-valid, but no network starts with 1
        ("visa 1743140021050", "visa 1743140021050"),  # an epoch-ms timestamp after a card word
        ("Card: 4111 1111 1111 1111 12 27 123", "Card: [REDACTED:CARD] 12 27 123"),
        ("41111111111111111111 after card", "41111111111111111111 after card"),  # 20 digits: not a card
    ],
)
def test_a_card_number_needs_a_network_luhn_and_card_grouping_or_card_words(
    redactor: Redactor, text: str, expected: str
) -> None:
    assert redactor.text(text) == expected


@pytest.mark.parametrize(
    ("address", "kept"),
    [
        ("127.0.0.1", True),
        ("127.12.0.9", True),
        ("0.0.0.0", True),
        ("::1", True),
        ("192.0.2.10", True),
        ("198.51.100.7", True),
        ("203.0.113.5", True),
        ("2001:db8::1", True),
        ("169.254.169.254", True),
        ("255.255.255.255", True),
        ("224.0.0.251", True),
        ("192.168.10.23", False),
        ("10.0.0.7", False),
        ("172.16.4.2", False),
        ("8.8.4.4", False),
        ("2a00:1450:4001:81b::200e", False),
        ("fe80::1ff:fe23:4567:890a", False),  # IPv6 link-local: its interface id may carry the MAC address
    ],
)
def test_addresses_that_are_code_or_documentation_are_kept_and_all_others_redacted(
    redactor: Redactor, address: str, kept: bool
) -> None:
    text = f"connect to {address} now"
    assert redactor.text(text) == (text if kept else "connect to [REDACTED:IP] now")


@pytest.mark.parametrize("text", ["version 1.2.3.4", "Version: 4.0.0.1", "build 8.1.2.3", "Chrome/120.0.0.0"])
def test_a_version_that_looks_like_an_address_is_kept(redactor: Redactor, text: str) -> None:
    assert redactor.text(text) == text


@pytest.mark.parametrize(
    "text", ["curl -v 192.168.1.20:8080", "nc -v 10.0.0.7 22", "server/10.1.2.3", "build 10.1.2.3"]
)
def test_a_private_address_is_redacted_even_where_a_version_could_stand(redactor: Redactor, text: str) -> None:
    # A private address after a version word or a path cannot be told from a version; privacy wins.
    assert "[REDACTED:IP]" in redactor.text(text)


def test_a_card_number_under_a_card_named_key_is_redacted_even_as_a_number(redactor: Redactor) -> None:
    record = {"cardNumber": "4111111111111111", "cc": "5500-0000-0000-0004", "id": "4111111111111111"}
    assert redactor.value(record) == {"cardNumber": "[REDACTED:CARD]", "cc": "[REDACTED:CARD]", "id": record["id"]}
    nested = {"card": {"number": 4111111111111111}, "discovery": {"n": 4111111111111111}, "ts": 4111111111111111}
    assert redactor.value(nested) == {
        "card": {"number": "[REDACTED:CARD]"},
        "discovery": nested["discovery"],
        "ts": nested["ts"],
    }


@pytest.mark.parametrize(
    "text", ["it runs on 10.20.30.40.", "http://proxy/10.20.30.40", "ip.addr==10.20.30.40", "ssh bob@10.20.30.40"]
)
def test_an_address_in_a_sentence_url_or_filter_is_still_redacted(redactor: Redactor, text: str) -> None:
    assert "10.20.30.40" not in redactor.text(text)


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
