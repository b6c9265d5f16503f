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
    ("amex 3782 822463 10005 ok", "3782 822463 10005", "CARD"),
    ("cc 4012888888881881 exp 12/27", "4012888888881881", "CARD"),
    ("card number: 5105105105105100", "5105105105105100", "CARD"),
    ("ssn 078-05-1120 on file", "078-05-1120", "SSN"),
    ("server at 192.168.10.23 is down", "192.168.10.23", "IP"),
    ("ipv6 2a00:1450:4001:81b::200e too", "2a00:1450:4001:81b::200e", "IP"),
    ("the box at 10.20.30.40.", "10.20.30.40", "IP"),
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
    ("password: correcthorse", "correcthorse", "SECRET"),
    ("token=sk.live.abc123 in the env", "sk.live.abc123", "SECRET"),
    ('api_key = "kq83hfn2kd9s"', "kq83hfn2kd9s", "SECRET"),
    # values a looser "is this code?" rule once let through
    ("my password: dragon.", "dragon", "SECRET"),
    ("DB_PASSWORD=Correct.Horse.Battery", "Correct.Horse.Battery", "SECRET"),
    ("JWT_SECRET=my_jwt_secret_value", "my_jwt_secret_value", "SECRET"),
    ("password=my-dog-rex", "my-dog-rex", "SECRET"),
    ("password=****hunter2", "hunter2", "SECRET"),
    ("charge 4242424242424242 exp 12/26", "4242424242424242", "CARD"),
    ("Card number for the customer account below: 4111111111111111", "4111111111111111", "CARD"),
    ("curl -v 192.168.1.20:8080/health", "192.168.1.20", "IP"),
    ("proxy at server/10.1.2.3", "10.1.2.3", "IP"),
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

# Technical values that look like secrets or personal data to a naive pattern but are not: each must come
# through unchanged on its own, inside a sentence, inside code, and as a JSON string. Epoch values marked
# "Luhn" pass the Luhn check (found by search, then hard-coded), as do the bare test-card numbers in code.
NON_SECRETS: list[str] = [
    # epoch seconds, milliseconds, microseconds, nanoseconds
    "1732105440",
    "1732105448",  # Luhn
    "1743140006270",
    "1743140021050",  # Luhn: a real Continue autocomplete timestamp
    "1743140006275",  # Luhn
    "ts=1743167813553",  # Luhn
    "created_at: 1744266396813",  # Luhn
    "1732105440123461",  # Luhn
    "1732105440123456799",  # Luhn
    # ids and hashes
    "39213818-6133-4215-9e0e-2a54bd2b1f3c",
    "123e4567-e89b-12d3-a456-426614174000",
    "12345678-1234-5678-1234-567812345678",
    "00000000-0000-0000-0000-000000000000",
    "a1b2c3d",
    "commit 9fceb02 fixed it",
    "e83c5163316f89bfbde7d9ab23ca2e25604af290",
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824",
    "order #100023 for pid 48213",
    # versions
    "1.2.3",
    "v2.10.0-rc.1",
    "Python 3.11.7",
    "v1.2.3.4",
    "version 1.2.3.4",
    "Version: 10.0.19041.1",
    "release 2.0.0.1",
    "1.2.3.4.5",
    "numpy==1.26.4",
    "build 4.0.2.3",
    "Mozilla/5.0 (X11; Linux x86_64) Chrome/120.0.0.0 Safari/537.36",
    "Visual Studio Code/1.98.2 (Continue/1.0.5)",
    # hosts and ports that are code, not a person's network
    "localhost:8080",
    "127.0.0.1:5432",
    "0.0.0.0:8000",
    "[::1]:3000",
    "http://127.0.0.1:11434/api/generate",
    "nameserver 127.0.0.53",
    "::1",
    "192.0.2.10",
    "203.0.113.5",
    "198.51.100.7",
    "2001:db8::1",
    "ping 2001:db8:85a3::8a2e:370:7334",
    "curl http://169.254.169.254/latest/meta-data/",
    "mdns 224.0.0.251",
    "netmask 255.255.255.0 broadcast 255.255.255.255",
    # source locations, colours, numbers in code
    "file.py:123:45",
    "src/app.ts:1024:7",
    'File "/usr/lib/python3.11/json/decoder.py", line 355',
    "#ff00aa",
    "color: #1e1e1e;",
    "x = 4111111111111111",
    "seed = 5500000000000004",
    "TEST_NUMBER = 378282246310005",
    "const big = 6011111111111117n;",
    "MAX_SAFE_INTEGER = 9007199254740991",
    "i64::MAX == 9223372036854775807",
    "snowflake 1234567890123456789",
    "range(1000, 2000)",
    "for i in range(10, 100, 5):",
    "1024 * 1024 * 1024",
    "x[123:456]",
    "np.zeros((256, 256, 3))",
    "0x7fffffff",
    "3.14159265358979",
    "6.02214076e23",
    # times and durations
    "2025-03-18T09:21:07.123Z",
    "2025-03-18 09:21:07,123",
    "2025-03-18T09:21:07.123456+00:00",
    "Thu, 18 Mar 2025 09:21:07 GMT",
    "elapsed 00:01:23.456",
    "took 1.234s",
    "1500ms",
    "P1DT2H3M4S",
    "latency p99=123.45 ms",
    # code that the IPv6 and phone patterns must not take
    "std::vector<int> v;",
    "ys = xs[::-1]",
    "ISBN 978-3-16-148410-0",
    # code that names where a secret comes from, never the secret (real Continue prompts hold these)
    'api_key = os.getenv("SERPER_API_KEY")',
    'headers = {"X-API-KEY": api_key}',
    "api_key = serper_api_key",
    "password = request.form['password']",
    "token = get_token()",
    "apiKey: process.env.OPENAI_API_KEY",
    "export OPENAI_API_KEY=$OPENAI_API_KEY",
    'api_key = "YOUR_API_KEY"',
    "password: <your password>",
    # a sentence that introduces a code block: the fence on the next line is no password
    "2. Create a login role with a password:\n   ```sql\n   CREATE ROLE appuser WITH LOGIN;\n   ```",
    "token: string;",
    "def login(username: str, password: str) -> bool:",
]

# JSON numbers as telemetry writes them (timestamps, counts, sizes, ids): never changed, whatever they look
# like as text. The first five are the real Continue timestamps that once became [REDACTED:CARD].
NUMERIC_NON_SECRETS: list[int | float] = [
    1743140021050,
    1743167813553,
    1743169969999,
    1743171931961,
    1744266396813,
    1732105448,
    1700000015838,
    1732105440123461,
    1732105440123456799,
    4111111111111111,
    -4111111111111111,
    5500000000000004,
    378282246310005,
    4012888888881881,
    9223372036854775807,
    5551234567,
    1732105440.123,
    4.111111111111111e15,
    0.2,
    0,
]
