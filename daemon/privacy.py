"""Redaction of secrets and personal data, and keyed hashing of user ids, before anything is stored."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
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


_16_TO_19 = frozenset(range(16, 20))
# (lowest prefix, highest prefix, lengths) per card network. One number in ten passes Luhn, so Luhn alone
# takes every tenth timestamp or id for a card; a network's prefix and length rule out nearly all of them
# (no network issues numbers that start with 1, as every epoch timestamp until 2033 does).
_ISSUERS: tuple[tuple[str, str, frozenset[int]], ...] = (
    ("4", "4", frozenset({13, 16, 19})),  # Visa
    ("51", "55", frozenset({16})),  # Mastercard
    ("2221", "2720", frozenset({16})),  # Mastercard 2-series
    ("34", "34", frozenset({15})),  # American Express
    ("37", "37", frozenset({15})),
    ("6011", "6011", _16_TO_19),  # Discover
    ("644", "649", _16_TO_19),
    ("65", "65", _16_TO_19),
    ("300", "305", frozenset(range(14, 20))),  # Diners Club
    ("36", "36", frozenset(range(14, 20))),
    ("38", "39", frozenset(range(14, 20))),
    ("3528", "3589", _16_TO_19),  # JCB
    ("62", "62", _16_TO_19),  # UnionPay
    ("5018", "5018", frozenset(range(13, 20))),  # Maestro: only its own ranges, not all of 50 and 56-69
    ("5020", "5020", frozenset(range(13, 20))),
    ("5038", "5038", frozenset(range(13, 20))),
    ("5893", "5893", frozenset(range(13, 20))),
    ("6304", "6304", frozenset(range(13, 20))),
    ("6759", "6759", frozenset(range(13, 20))),
    ("6761", "6763", frozenset(range(13, 20))),
)
# Words that, shortly before a bare run of digits, say it is a card number; short ones must stand alone.
_CARD_WORDS = re.compile(
    r"(?i)(?<![a-z])(?:card|visa|master ?card|amex|american express|discover(?![a-z])|diners|jcb|union ?pay|maestro"
    r"|credit|debit|payment|pay(?:ing)? with|charge[ds]?|billing|(?:cc|pan)(?![a-z]))"
)
_CARD_WORDS_BEFORE = 60
# Just after a bare run of digits, these say it is a card number too: its expiry or security code.
_CARD_WORDS_AFTER = re.compile(r"(?i)^\W{0,3}(?:exp(?:iry|ires|iration)?|valid thru|cvv2?|cvc2?|cid|security code)\b")


_CARD_KEY_WORDS = frozenset({"card", "cards", "cc", "pan", "credit", "debit", "visa", "mastercard", "amex", "payment"})
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


def _names_card(key: str) -> bool:
    """Whether a JSON key names a card (`card_number`, `cardNumber`, `cc`, `payment.card`), word by word."""
    return bool(key) and not _CARD_KEY_WORDS.isdisjoint(re.split(r"[^a-z0-9]+", _CAMEL.sub("_", key).lower()))


def _issued(digits: str) -> bool:
    """Whether a card network issues numbers with this prefix and length, and the Luhn check passes."""
    return _luhn_ok(digits) and any(
        low <= digits[: len(low)] <= high and len(digits) in lengths for low, high, lengths in _ISSUERS
    )


def _is_card_number(text: str) -> bool:
    """Whether a whole string is a card number, bare or grouped, whatever surrounds it."""
    digits = text.replace(" ", "").replace("-", "")
    return 13 <= len(digits) <= 19 and digits.isascii() and digits.isdigit() and _issued(digits)


def _grouped_like_a_card(groups: list[str]) -> bool:
    """Whether digit groups are laid out as printed on a card: 4-4-4-4(-n), or 4-6-4 and 4-6-5."""
    sizes = tuple(len(group) for group in groups)
    if sizes in ((4, 6, 4), (4, 6, 5)):  # Diners Club, American Express
        return True
    return len(sizes) >= 4 and set(sizes[:-1]) == {4} and 1 <= sizes[-1] <= 4


def _card(match: re.Match[str]) -> str:
    """A card number if it is grouped like one or card words come just before it; else unchanged.

    A bare run of digits in code or a log is far more often a timestamp, an id or a constant, so it takes
    those words to call it a card. Digits may follow a card (an expiry, a CVV): the longest run of whole
    groups that is a card number is replaced, and the rest kept.
    """
    text = match.group(0)
    groups = re.split(r"[ -]", text)
    start = match.start()
    named = bool(_CARD_WORDS.search(match.string[max(0, start - _CARD_WORDS_BEFORE) : start])) or bool(
        _CARD_WORDS_AFTER.search(match.string[match.end() : match.end() + 24])
    )
    for end in range(len(groups), 0, -1):
        if _issued("".join(groups[:end])) and (named or _grouped_like_a_card(groups[:end])):
            cut = sum(len(group) + 1 for group in groups[:end]) - 1
            return placeholder("CARD") + text[cut:]
    return text


# Addresses that are code or documentation, never a person's machine or network: loopback (127/8, ::1),
# unspecified (0.0.0.0, ::), multicast, the documentation ranges, 240/4, and IPv4 link-local
# (self-assigned, and 169.254.169.254 is every cloud's metadata service). IPv6 link-local is redacted:
# its interface id is often built from the MAC address. Private ranges are redacted: they map a home or
# office network.
_NOT_PERSONAL_NETWORKS = tuple(
    ipaddress.ip_network(network)
    for network in (
        "192.0.2.0/24",  # documentation (RFC 5737)
        "198.51.100.0/24",
        "203.0.113.0/24",
        "2001:db8::/32",  # documentation (RFC 3849, RFC 9637)
        "3fff::/20",
        "169.254.0.0/16",
        "240.0.0.0/4",  # reserved, never assigned: holds netmasks (255.255.255.0) and broadcast
    )
)
# Just before a dotted quad, these make it a version: "version 1.2.3.4", "v 1.2.3.4", and a product token
# as in a user agent, "Chrome/120.0.0.0" (a word after a space, not a URL path: "http://host/10.0.0.1").
# ("v1.2.3.4" and "1.2.3.4.5" are already kept out by the pattern's look-arounds.) Not "==": that is as
# often a filter ("ip.addr==10.0.0.5") as a pinned package.
_VERSION_BEFORE = re.compile(
    r"(?i)(?:(?<![-\w])(?:v|ver|version|release|build|rev)\s*[:=]?\s*|(?<![^\s(;,])[a-z][\w.-]*/)$"
)


def _ip(match: re.Match[str]) -> str:
    """An IP address if it could be a person's; addresses that are code or docs, and versions, unchanged."""
    text = match.group(0)
    start = match.start()
    try:
        address = ipaddress.ip_address(text)
    except ValueError:  # the pattern is looser than the grammar: "1::12345678" is not an address
        return text
    # A version looks like an address, but a private address after "-v" or a path is still an address.
    if not address.is_private and _VERSION_BEFORE.search(match.string, max(0, start - 40), start):
        return text
    if address.is_loopback or address.is_unspecified or address.is_multicast:
        return text
    if any(address in network for network in _NOT_PERSONAL_NETWORKS):
        return text
    return placeholder("IP")


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


# What follows `api_key =` in code more often than a secret: a call or an index of something that holds
# secrets, an attribute path from such a root, a secret-named variable, a type, a placeholder.
_CODE_VALUE = re.compile(r"^[A-Za-z_$][\w$]*(?:(?:\.|::)[A-Za-z_$][\w$]*)*(?P<end>[(\[]?)$")
_SECRET_SOURCES = re.compile(
    r"(?i)^(?:os|process|env|environ|settings|config|conf|cfg|self|this|secrets?|credentials|creds|vault|options"
    r"|opts|args|params|request|req|ctx|context|app|st|keyring|import)$|env|getenv|secret|token|key|pass|cred|vault"
    r"|config|setting|(?:^|_)(?:get|read|load|fetch|input|prompt)"
)
_TYPE_NAMES = frozenset(
    {
        "string",
        "str",
        "number",
        "int",
        "bool",
        "boolean",
        "bytes",
        "any",
        "none",
        "null",
        "undefined",
        "optional",
        "true",
        "false",
        "secretstr",
    }
)
_PLACEHOLDER = re.compile(r"(?i)^(?:(?:your|enter|insert|replace)[_-][\w-]*|<[\w -]*>?|x{3,}|\*{3,}|\.{3})$")


def _names_no_secret(prefix: str, value: str) -> bool:
    """Whether the value after a secret's name is code or a placeholder rather than a secret.

    `api_key = os.getenv(...)`, `"X-API-KEY": api_key`, `token: string` and `api_key = "YOUR_API_KEY"` name
    where a secret comes from; `password=hunter2`, `password=sunshine.` and `"api_key": "kq83hfn2kd9s"` are
    one. When unsure, it is a secret.
    """
    value = value.rstrip(")]>.,;:!?")  # what closes the call, annotation or sentence around it
    if _PLACEHOLDER.match(value) or value.lower() in _TYPE_NAMES:
        return True
    if prefix.rstrip().endswith(("'", '"')) or any(ch.isdigit() for ch in value):
        return False  # a quoted value is data, not code; names rarely carry digits, secrets nearly always do
    code = _CODE_VALUE.match(value)
    if code is None:
        return False
    path = re.split(r"\.|::", value.rstrip("(["))
    if len(path) > 1 or code.group("end"):
        # A call, an index or an attribute path: code only when it reads from where secrets are kept.
        return any(_SECRET_SOURCES.search(part) for part in path)
    return SECRET_KEY.match(value) is not None  # a variable named like a secret: serper_api_key


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
        # The value is on the line of its name: "with a password:" before a code block names no secret.
        rf"(?<![A-Za-z])((?i:{_SECRET_WORDS})[\"']?[ \t]*[:=][ \t]*[\"']?)(?!\[REDACTED)([^\s\"',;{{}}]{{3,}})",
        rf"(?i:{_SECRET_WORDS}){_GAP}[:=]",
        lambda m: m.group(0) if _names_no_secret(m.group(1), m.group(2)) else m.group(1) + placeholder("SECRET"),
    ),
    Rule(
        "EMAIL",
        r"\b[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9-]{1,63}(?:\.[A-Za-z0-9-]{1,63})*\.[A-Za-z]{2,}\b",
        r"[A-Za-z0-9._%+-]@[A-Za-z0-9-]+\.[A-Za-z]{2}",
    ),
    Rule("SSN", r"\b(?!000|666|9\d\d)\d{3}-(?!00)\d{2}-(?!0000)\d{4}\b", r"\d{3}-\d{2}-\d{4}"),
    Rule("CARD", r"(?<![\w.-])(?<!\d[ -])\d(?:[ -]?\d){12,18}(?![\w-])", r"(?:\d[ -]?){12,18}\d", _card),
    Rule(
        "PHONE",
        r"(?<![\w.+-])(?<!\d[ .-])(?:\+\d{1,3}[ .-]?)?(?:\(\d{2,4}\)|\d{2,4})[ .-]\d{3,4}[ .-]\d{3,4}"
        r"(?![\w-])(?![ .]\d)"
        r"|(?<![\w+])\+[1-9]\d{7,14}\b",
        r"(?:\(\d{2,4}\)|\d{2,4})[ .-]\d{3,4}[ .-]\d{3,4}|\+[1-9]\d{7,14}",
    ),
    Rule(
        "IP",
        r"(?<![\w.])(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(?!\.?\w)"
        r"|(?<![\w:])(?:[0-9A-Fa-f]{1,4}:){7}[0-9A-Fa-f]{1,4}(?![\w:])"
        r"|(?<![\w:])(?:[0-9A-Fa-f]{1,4}:){1,6}:(?:[0-9A-Fa-f]{1,4}:?){0,5}[0-9A-Fa-f]{1,4}(?![\w:])"
        r"|(?<![\w:])::(?:[0-9A-Fa-f]{1,4}:?){0,6}[0-9A-Fa-f]{1,4}(?![\w:])",
        r"\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}|[0-9A-Fa-f]::|::[0-9A-Fa-f]|(?:[0-9A-Fa-f]{1,4}:){7}",
        _ip,
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

    def value(self, value: Any, key: str = "", card: bool = False) -> Any:
        """Redact every string inside a JSON value; values under secret-named keys are replaced whole.

        JSON numbers are left alone: in telemetry they are timestamps, counts, sizes and ids, and a
        placeholder in their place makes the record unreadable (one epoch-milliseconds timestamp in ten
        passes the Luhn check). Only under a card-named key (`card_number`, `card: {number: ...}`) is a
        number that is a valid card number one.
        """
        card = card or _names_card(key)
        if isinstance(value, str):
            if key and value and SECRET_KEY.match(key) and not value.startswith("[REDACTED"):
                return placeholder("SECRET")
            if card and _is_card_number(value):
                return placeholder("CARD")  # the key is the card words a bare number needs
            return self.text(value)
        if isinstance(value, dict):
            return {k: self.value(v, k, card) for k, v in value.items()}
        if isinstance(value, list):
            return [self.value(v, key, card) for v in value]
        if card and isinstance(value, int) and not isinstance(value, bool) and _is_card_number(str(value)):
            return placeholder("CARD")
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
