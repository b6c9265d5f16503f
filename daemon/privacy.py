"""Redaction of secrets and personal data, and keyed hashing of user ids, before anything is stored."""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

Replacement = str | Callable[[re.Match[str]], str]


def placeholder(kind: str) -> str:
    """The typed placeholder that stands where a redacted value was."""
    return f"[REDACTED:{kind}]"


def _luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _card(match: re.Match[str]) -> str:
    digits = re.sub(r"\D", "", match.group(0))
    return placeholder("CARD") if 13 <= len(digits) <= 19 and _luhn_ok(digits) else match.group(0)


_SECRET_WORDS = (
    r"password|passwd|passphrase|pwd|secret|client[_-]?secret|api[_-]?key|apikey|access[_-]?key"
    r"|secret[_-]?key|private[_-]?key|access[_-]?token|auth[_-]?token|refresh[_-]?token|token"
    r"|credentials?|aws_secret_access_key"
)
SECRET_KEY = re.compile(rf"(?i)^(?:.*[_-])?(?:{_SECRET_WORDS})$")

_API_KEY_BODY = (
    r"(?:sk-(?:ant-|proj-|svcacct-|admin-)?[A-Za-z0-9_-]{20,}"
    r"|(?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{22,}|glpat-[A-Za-z0-9_-]{20,}"
    r"|(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA|ANVA|AIPA)[A-Z0-9]{16}"
    r"|xox[abposr]-[A-Za-z0-9-]{10,}|(?:sk|rk|pk)_(?:live|test)_[A-Za-z0-9]{16,}"
    r"|AIza[0-9A-Za-z_-]{35}|hf_[A-Za-z0-9]{30,}|npm_[A-Za-z0-9]{36}"
    r"|SG\.[A-Za-z0-9_-]{16,}\.[A-Za-z0-9_-]{16,}|gsk_[A-Za-z0-9]{40,}|r8_[A-Za-z0-9]{30,})"
)
_API_KEY = r"\b" + _API_KEY_BODY
# Between a secret's name and its value in raw JSON: quotes, escaped quotes, whitespace or its escapes.
_GAP = r"""[\\"']{0,2}(?:\s|\\[nrt])*"""


@dataclass(frozen=True)
class Rule:
    """One kind of secret: a precise pattern, and a cheap RE2 trigger that matches wherever it could."""

    kind: str
    pattern: str
    trigger: str
    replacement: Replacement | None = None


# Ordered: structured secrets first, so that a JWT is not half-eaten by a looser pattern. Each trigger
# is a superset of its pattern that RE2 can scan for (no look-arounds), and stays one in raw JSON text
# (no leading \b, escapes allowed where whitespace is) except for \u and \/ escapes, which callers check.
RULES: tuple[Rule, ...] = (
    Rule(
        "PRIVATE_KEY",
        r"-----BEGIN[A-Z0-9 ]{0,40} PRIVATE KEY(?: BLOCK)?-----(?:.|\n)*?"
        r"(?:-----END[A-Z0-9 ]{0,40} PRIVATE KEY(?: BLOCK)?-----|\Z)",
        r"PRIVATE KEY",
    ),
    Rule("JWT", r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*", r"eyJ[A-Za-z0-9_-]{8,}\.eyJ"),
    Rule("URL_CREDENTIALS", r"(?<=://)[^\s/:@]{1,256}:[^\s/@]{1,256}(?=@)", r"://[^\s/:@]+:[^\s/@]*@"),
    Rule("API_KEY", _API_KEY, _API_KEY_BODY),
    Rule("TOKEN", r"(?<=[Bb]earer )[A-Za-z0-9._~+/-]{12,}=*", r"[Bb]earer [A-Za-z0-9._~+/-]{12}"),
    Rule(
        "SECRET",
        rf"(?<![A-Za-z])((?i:{_SECRET_WORDS})[\"']?\s*[:=]\s*[\"']?)(?!\[REDACTED)([^\s\"',;{{}}]{{3,}})",
        rf"(?i:{_SECRET_WORDS}){_GAP}[:=]",
        lambda m: m.group(1) + placeholder("SECRET"),
    ),
    Rule(
        "EMAIL",
        r"\b[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9-]{1,63}(?:\.[A-Za-z0-9-]{1,63})*\.[A-Za-z]{2,}\b",
        r"[A-Za-z0-9._%+-]@[A-Za-z0-9-]+\.[A-Za-z]{2}",
    ),
    Rule("SSN", r"\b(?!000|666|9\d\d)\d{3}-(?!00)\d{2}-(?!0000)\d{4}\b", r"\d{3}-\d{2}-\d{4}"),
    Rule("CARD", r"(?<![\d.-])(?:\d[ -]?){12,18}\d(?![\d-])", r"(?:\d[ -]?){12,18}\d", _card),
    Rule(
        "PHONE",
        r"(?<![\w.+-])(?<!\d[ .-])(?:\+\d{1,3}[ .-]?)?(?:\(\d{2,4}\)|\d{2,4})[ .-]\d{3,4}[ .-]\d{3,4}"
        r"(?![\w-])(?![ .]\d)"
        r"|(?<![\w+])\+[1-9]\d{7,14}\b",
        r"(?:\(\d{2,4}\)|\d{2,4})[ .-]\d{3,4}[ .-]\d{3,4}|\+[1-9]\d{7,14}",
    ),
    Rule(
        "IP",
        r"(?<![\w.])(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(?![\w.])"
        r"|(?<![\w:])(?:[0-9A-Fa-f]{1,4}:){7}[0-9A-Fa-f]{1,4}(?![\w:])"
        r"|(?<![\w:])(?:[0-9A-Fa-f]{1,4}:){1,6}:(?:[0-9A-Fa-f]{1,4}:?){0,5}[0-9A-Fa-f]{1,4}(?![\w:])"
        r"|(?<![\w:])::(?:[0-9A-Fa-f]{1,4}:?){0,6}[0-9A-Fa-f]{1,4}(?![\w:])",
        r"\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}|[0-9A-Fa-f]::|::[0-9A-Fa-f]|(?:[0-9A-Fa-f]{1,4}:){7}",
    ),
)


class Redactor:
    """Replaces secrets and personal data in text and JSON values with typed placeholders.

    An RE2 set scan finds which rules could apply (in a few microseconds, and most strings have nothing);
    only those rules then run their precise Python patterns.
    """

    def __init__(self, extra_patterns: dict[str, str] | None = None) -> None:
        import re2

        extra = tuple(Rule(kind.upper(), p, p) for kind, p in (extra_patterns or {}).items())
        self.rules = RULES + extra
        self._compiled = [re.compile(rule.pattern) for rule in self.rules]
        self._replacements = [rule.replacement or placeholder(rule.kind) for rule in self.rules]
        self._triggers = re2.Set.SearchSet(re2.Options())
        for rule in self.rules:
            self._triggers.Add(rule.trigger)
        self._triggers.Compile()

    def may_contain(self, raw: bytes) -> bool:
        """Whether any rule could match in the strings of a raw JSON text (UTF-8 bytes)."""
        return b"\\u" in raw or b"\\/" in raw or bool(self._triggers.Match(raw))

    def text(self, value: str) -> str:
        """Redact one string."""
        hits = self._triggers.Match(value)
        if not hits:
            return value
        for index in sorted(hits):
            value = self._compiled[index].sub(self._replacements[index], value)
        return value

    def value(self, value: Any, key: str = "") -> Any:
        """Redact every string inside a JSON value; values under secret-named keys are replaced whole."""
        if isinstance(value, str):
            if key and value and SECRET_KEY.match(key) and not value.startswith("[REDACTED"):
                return placeholder("SECRET")
            return self.text(value)
        if isinstance(value, dict):
            return {k: self.value(v, k) for k, v in value.items()}
        if isinstance(value, list):
            return [self.value(v, key) for v in value]
        if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10**8:
            text = str(value)
            redacted = self.text(text)
            return value if redacted == text else redacted
        return value


_JSON_ESCAPE = re.compile(r"\\(?:u([0-9A-Fa-f]{4})|([\"\\/bfnrt]))")
_SIMPLE_ESCAPES = {"b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}


def unescape_json_text(text: str) -> str:
    """Undo JSON string escapes in text that is not valid JSON, so redaction sees what a reader would."""

    def replace(match: re.Match[str]) -> str:
        if match.group(1):
            return chr(int(match.group(1), 16))
        char = match.group(2)
        return _SIMPLE_ESCAPES.get(char, char)

    return _JSON_ESCAPE.sub(replace, text)


class UserHasher:
    """Hashes user ids with a per-install secret, so they stay joinable but are not readable."""

    def __init__(self, key: bytes) -> None:
        self._key = key
        self._cache: dict[str, str] = {}  # a workstation has few users; HMAC per record is measurable

    @classmethod
    def from_home(cls, home: Path) -> UserHasher:
        """Load the install's key from `<home>/secret.key`, creating it (mode 0600) on first use."""
        path = home / "secret.key"
        try:
            return cls(bytes.fromhex(path.read_text().strip()))
        except FileNotFoundError:
            pass
        key = secrets.token_bytes(32)
        partial = path.with_name(f".secret.key.{os.getpid()}")
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(key.hex())
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(partial, path)  # atomic, and never replaces a key another process made first
        except FileExistsError:
            return cls(bytes.fromhex(path.read_text().strip()))
        finally:
            partial.unlink()
        return cls(key)

    def hash(self, user_id: object) -> str:
        """A stable opaque id for one user."""
        text = str(user_id)
        hashed = self._cache.get(text)
        if hashed is None:
            digest = hmac.new(self._key, text.encode(), hashlib.sha256).hexdigest()
            hashed = f"user:{digest[:24]}"
            if len(self._cache) < 10_000:
                self._cache[text] = hashed
        return hashed


class Privacy:
    """Everything done to a record before it is stored: user ids hashed, then every string redacted."""

    def __init__(self, redactor: Redactor, hasher: UserHasher, user_fields: list[str]) -> None:
        self.redactor = redactor
        self.hasher = hasher
        self.user_fields = frozenset(user_fields)

    def record(self, record: dict[str, Any], raw: bytes | None = None) -> tuple[dict[str, Any], str | None, bool]:
        """A telemetry record safe to store, its (hashed) user, and whether it differs from the input.

        With the record's raw JSON text, one scan of it decides whether any string needs a closer look.
        """
        users = [key for key in self.user_fields if record.get(key) is not None]
        clean = raw is not None and not self.redactor.may_contain(raw)
        if clean and not users:
            return record, None, False
        out = dict(record) if clean else {key: self.redactor.value(value, key) for key, value in record.items()}
        user: str | None = None
        for key in users:
            value = record[key]
            if isinstance(value, dict | list):
                out[key] = placeholder("USER")
                continue
            out[key] = self.hasher.hash(value)
            user = user or out[key]
        return out, user, True
