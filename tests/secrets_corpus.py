"""Planted secrets and personal data, each with the placeholder kind it must become."""

from __future__ import annotations

PRIVATE_KEY = (
    "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA7bq9Zq3mXfakeKeyMaterial0123456789abcdef\n"
    "Qm9ndXNLZXlNYXRlcmlhbEZvclRlc3RzT25seQ==\n-----END RSA PRIVATE KEY-----"
)
JWT = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4ifQ.SflKxwRJSMeKKF2QT4fwpM"

# (text containing the secret, the secret itself, the placeholder kind)
PLANTED: list[tuple[str, str, str]] = [
    ("write to alice.smith@example.com today", "alice.smith@example.com", "EMAIL"),
    ("call me on +1 (415) 555-2671 tomorrow", "555-2671", "PHONE"),
    ("or +442071838750", "+442071838750", "PHONE"),
    ("pay with 4111 1111 1111 1111 please", "4111 1111 1111 1111", "CARD"),
    ("card 5500-0000-0000-0004 expired", "5500-0000-0000-0004", "CARD"),
    ("ssn 078-05-1120 on file", "078-05-1120", "SSN"),
    ("server at 192.168.10.23 is down", "192.168.10.23", "IP"),
    ("ipv6 2001:db8:85a3::8a2e:370:7334 too", "2001:db8:85a3::8a2e:370:7334", "IP"),
    (
        "OPENAI_API_KEY is sk-proj-Zx8Qw3Er5Ty7Ui9Op1As2Df4Gh6Jk8Lz",
        "sk-proj-Zx8Qw3Er5Ty7Ui9Op1As2Df4Gh6Jk8Lz",
        "API_KEY",
    ),
    (
        "anthropic sk-ant-api03-AbCdEfGhIjKlMnOpQrStUvWxYz012345",
        "sk-ant-api03-AbCdEfGhIjKlMnOpQrStUvWxYz012345",
        "API_KEY",
    ),
    ("gh token ghp_1234567890abcdefghijABCDEFGHIJ123456", "ghp_1234567890abcdefghijABCDEFGHIJ123456", "API_KEY"),
    ("aws AKIAIOSFODNN7EXAMPLE key", "AKIAIOSFODNN7EXAMPLE", "API_KEY"),
    ("slack xoxb-123456789012-abcdefghijklmnop", "xoxb-123456789012-abcdefghijklmnop", "API_KEY"),
    ("stripe sk_live_51HqLyjWDarjtT1zdp7dcXYZ", "sk_live_51HqLyjWDarjtT1zdp7dcXYZ", "API_KEY"),
    ("google AIzaSyDaGmWKa4JsXZ-HjGw7ISLn_3namBGewQe", "AIzaSyDaGmWKa4JsXZ-HjGw7ISLn_3namBGewQe", "API_KEY"),
    ("hf hf_abcdefghijklmnopqrstuvwxyzABCDEF", "hf_abcdefghijklmnopqrstuvwxyzABCDEF", "API_KEY"),
    ("jwt " + JWT, JWT, "JWT"),
    ("Authorization: Bearer abcDEF123456ghiJKL789", "abcDEF123456ghiJKL789", "TOKEN"),
    ("key:\n" + PRIVATE_KEY, "MIIEowIBAAKCAQEA7bq9Zq3mXfakeKeyMaterial", "PRIVATE_KEY"),
    ("clone https://bob:hunter2pass@git.example.com/repo.git", "hunter2pass", "URL_CREDENTIALS"),
    ("export DB_PASSWORD=Tr0ub4dor3xyz", "Tr0ub4dor3xyz", "SECRET"),
    ('config {"api_key": "kq83hfn2kd9s"}', "kq83hfn2kd9s", "SECRET"),
    ("secret: s3cr3tV4lue!", "s3cr3tV4lue!", "SECRET"),
]

# Text that must come through unchanged.
HARMLESS = [
    "2026-11-22T10:30:00.123Z",
    "version 1.2.3 of the tool",
    "port 8080 and line 1234567",
    "ys = xs[::-1]",
    "std::vector<int> v;",
    "the tokens_input were 1234",
    "4111 1111 1111 1112 is not a valid card",
    "call foo(1, 2, 3)",
    "time 10:30:00",
]
