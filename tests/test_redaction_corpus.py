"""No false positives: technical values and real telemetry come through redaction unchanged."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest

from daemon.privacy import Privacy, Redactor, UserHasher
from tests.secrets_corpus import NON_SECRETS, NUMERIC_NON_SECRETS

REALWORLD = Path(__file__).resolve().parents[2] / "shared" / "realworld"
REAL_TOOLS = ("continue", "claude-code", "codex")
PLACEHOLDER = re.compile(r"\[REDACTED:([A-Z_]+)\]")
# Where a value sits in text: alone, in prose, in Python code, in a call.
LAYOUTS = ["{}", "I saw {} in the output.", 'value = "{}"  # from the log\n', "print({})"]


@pytest.fixture(scope="module")
def redactor() -> Redactor:
    return Redactor()


@pytest.fixture(scope="module")
def privacy(redactor: Redactor) -> Privacy:
    return Privacy(redactor, UserHasher(b"k" * 32), [])


@pytest.mark.parametrize("value", NON_SECRETS)
@pytest.mark.parametrize("layout", LAYOUTS)
def test_a_technical_value_is_not_taken_for_a_secret_in_text(redactor: Redactor, value: str, layout: str) -> None:
    text = layout.format(value)
    assert redactor.text(text) == text


@pytest.mark.parametrize("value", NON_SECRETS)
def test_a_technical_value_is_not_taken_for_a_secret_in_a_json_string(privacy: Privacy, value: str) -> None:
    record = {"prompt": value, "nested": [{"note": value}]}
    raw = orjson.dumps(record)
    assert privacy.redactor.value(record) == record
    assert privacy.record(orjson.loads(raw), raw)[0] == record


@pytest.mark.parametrize("number", NUMERIC_NON_SECRETS, ids=str)
def test_json_numbers_are_never_redacted(privacy: Privacy, number: float) -> None:
    record = {"timestamp": number, "counts": [number], "prompt": "hi", "password": "x"}
    raw = orjson.dumps(record)
    for out in (privacy.redactor.value(record), privacy.record(orjson.loads(raw), raw)[0]):
        assert out["timestamp"] == number and type(out["timestamp"]) is type(number)
        assert out["counts"] == [number]
        assert out["password"] == "[REDACTED:SECRET]"


def _compare(before: Any, after: Any, changed: Counter[str], where: str) -> None:
    """Walk two JSON values side by side: same shape and numbers, strings changed only by placeholders."""
    assert type(before) is type(after), where
    if isinstance(before, dict):
        assert list(before) == list(after), where
        for key in before:
            _compare(before[key], after[key], changed, f"{where}.{key}")
    elif isinstance(before, list):
        assert len(before) == len(after), where
        for item, out in zip(before, after, strict=True):
            _compare(item, out, changed, where)
    elif isinstance(before, str):
        if before != after:
            new = Counter(PLACEHOLDER.findall(after)) - Counter(PLACEHOLDER.findall(before))
            assert new, f"{where} changed without a placeholder"
            changed.update(new)
    else:
        assert before == after, where  # numbers, booleans and null survive as they are


def _real_files() -> list[Path]:
    return sorted(path for tool in REAL_TOOLS for path in (REALWORLD / tool).rglob("*.jsonl"))


@pytest.mark.skipif(not REALWORLD.is_dir(), reason=f"the real telemetry files are not checked out at {REALWORLD}")
def test_real_telemetry_loses_nothing_but_secrets_and_personal_data(privacy: Privacy) -> None:
    files = _real_files()
    assert files, f"no *.jsonl under {REALWORLD} for {REAL_TOOLS}"
    changed: Counter[str] = Counter()
    records = 0
    for path in files:
        for number, line in enumerate(path.read_bytes().splitlines(), 1):
            if not line.strip():
                continue
            record = orjson.loads(line)
            safe, _, _ = privacy.record(orjson.loads(line), line)
            _compare(record, safe, changed, f"{path.relative_to(REALWORLD)}:{number}")
            records += 1
    assert records > 1000
    # The Continue autocomplete timestamps that pass Luhn are numbers, and no real record holds a card.
    assert "CARD" not in changed, changed
    # They hold code that names secrets (`api_key = os.getenv(...)`), never a secret's value.
    assert "SECRET" not in changed, changed
    # In these files only 192.168.1.22 (a dev server's LAN address) is an address worth hiding.
    assert changed["IP"] == 2, changed
