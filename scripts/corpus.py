"""Generated telemetry in every format skilld reads, for benchmarks and tests (deterministic by seed)."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

TOPICS = [
    ("reverse a list in Python without changing the original", "Use slicing: `ys = xs[::-1]` returns a new list."),
    (
        "configure NixOS networking with a static IP",
        "Set networking.interfaces.eth0.ipv4.addresses in configuration.nix.",
    ),
    ("fix a borrow checker error when mutating a vector in a loop", "Iterate over indices or use iter_mut()."),
    ("speed up a slow PostgreSQL query with a join", "Add an index on the join column and check EXPLAIN ANALYZE."),
    ("write a pytest fixture that creates a temporary git repository", "Use tmp_path and subprocess git init."),
    ("debounce a React input handler", "Wrap the handler in useMemo(() => debounce(fn, 300), [])."),
    ("parse ISO timestamps with time zones in Go", "Use time.Parse(time.RFC3339, s)."),
    ("set up a systemd user service that restarts on failure", "Restart=on-failure in [Service], enable --user."),
]
SECRETS = [
    "my key is sk-proj-Abcdefghijklmnopqrstuvwx1234567890",
    "contact jane.doe@example.org",
    "token ghp_abcdefghijklmnopqrstuvwxyzABCDEFGHIJ",
    "card 4111 1111 1111 1111",
]
BAD_LINES = ['{"event": "task_submitted", "task_id": ', "[1, 2, 3]", "42", "\x00\x01garbage"]


def _text(rng: random.Random, base: str, secret_rate: float) -> str:
    filler = " ".join(rng.choice(["please", "quickly", "in production", "with tests", "on Linux"]) for _ in range(6))
    text = f"{base} {filler}"
    if rng.random() < secret_rate:
        text += " " + rng.choice(SECRETS)
    return text


def records(stream: str, n: int, seed: int = 0, secret_rate: float = 0.01) -> Iterator[dict[str, object]]:
    """n records of one stream."""
    rng = random.Random(f"{stream}:{seed}")
    start = datetime(2026, 11, 1, tzinfo=UTC)
    for i in range(n):
        q, a = rng.choice(TOPICS)
        when = (start + timedelta(seconds=i * 7)).isoformat()
        query, answer = _text(rng, f"How do I {q}?", secret_rate), _text(rng, a, secret_rate)
        if stream == "ralph":
            task, step = f"task-{seed}-{i // 4}", i % 4
            event = ["task_submitted", "iteration_started", "iteration_completed", "task_completed"][step]
            yield {
                "event": event,
                "task_id": task,
                "prompt": query,
                "output": answer,
                "backend": "aider",
                "iteration": step,
                "exit_code": 0,
                "timestamp": when,
                "context": {"files_modified": ["src/app.py"], "lines_changed": 12, "tests_passed": True},
            }
        elif stream == "aidb":
            yield {
                "event_type": "query",
                "query": query,
                "response": answer,
                "llm_used": "local",
                "model": "qwen",
                "tokens_input": 120,
                "tokens_output": 240,
                "latency_ms": 850,
                "cache_hit": False,
                "success": True,
                "timestamp": when,
            }
        elif stream == "hybrid":
            yield {
                "event": "route_decided",
                "query": query,
                "confidence_score": 0.82,
                "route": "local",
                "reasoning": answer,
                "value_score": 0.7,
                "timestamp": when,
            }
        elif stream == "vscode":
            yield {
                "event_type": "completion",
                "extension": "skilld-test",
                "model_used": "qwen",
                "is_local": True,
                "prompt_tokens": 80,
                "completion_tokens": 40,
                "latency_ms": 300,
                "success": True,
                "user_feedback": rng.choice([1, 0, -1]),
                "prompt": query,
                "completion": answer,
                "context": {"file": "main.py", "language": "python", "cursor_line": 10},
                "timestamp": when,
            }
        elif stream.startswith("continue:"):
            name = stream.split(":", 1)[1]
            base = {
                "eventName": name,
                "schema": "0.2.0",
                "timestamp": when,
                "userId": f"user-{i % 5}",
                "userAgent": "VSCode/1.95",
                "selectedProfileId": "local",
            }
            if name in ("chatInteraction", "chatFeedback"):
                base.update(
                    prompt=query,
                    completion=answer,
                    modelTitle="Qwen 7B",
                    modelProvider="ollama",
                    sessionId=f"s-{i // 3}",
                )
                if name == "chatFeedback":
                    base.update(feedback=rng.random() < 0.8, modelName="qwen")
                else:
                    base.update(tools=[], rules=[])
            elif name == "autocomplete":
                base.update(
                    accepted=rng.random() < 0.5,
                    time=120,
                    prefix="def f(",
                    suffix=")",
                    prompt=query,
                    completion=answer,
                    modelProvider="ollama",
                    modelName="qwen",
                    cacheHit=False,
                    filepath="a.py",
                    gitRepo="repo",
                    completionId=f"c-{seed}-{i}",
                    uniqueId="machine",
                    timestamp=when,
                )
            elif name == "editOutcome":
                base.update(
                    prompt=query,
                    completion=answer,
                    previousCode="x = 1",
                    newCode="x = 2",
                    lineChange=1,
                    accepted=True,
                    filepath="a.py",
                    modelProvider="ollama",
                    modelName="qwen",
                )
            else:
                base.update(model="qwen", promptTokens=10, generatedTokens=20)
            yield base
        else:
            yield {"kind": "note", "input": query, "output": answer, "ok": True, "at": when}


LAYOUT = {
    "ralph-events.jsonl": "ralph",
    "aidb-events.jsonl": "aidb",
    "hybrid-events.jsonl": "hybrid",
    "vscode-events.jsonl": "vscode",
    "dev_data/0.2.0/chatInteraction.jsonl": "continue:chatInteraction",
    "dev_data/0.2.0/chatFeedback.jsonl": "continue:chatFeedback",
    "dev_data/0.2.0/autocomplete.jsonl": "continue:autocomplete",
    "dev_data/0.2.0/editOutcome.jsonl": "continue:editOutcome",
    "dev_data/0.2.0/tokensGenerated.jsonl": "continue:tokensGenerated",
    "mytool-log.jsonl": "mytool",
}


def write_corpus(directory: Path, total: int, seed: int = 0, bad_rate: float = 0.002) -> dict[str, int]:
    """Write about `total` lines spread over every format; return lines written per file."""
    rng = random.Random(seed)
    per_file = total // len(LAYOUT)
    counts: dict[str, int] = {}
    for name, stream in LAYOUT.items():
        path = directory / name
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "w", encoding="utf-8") as handle:
            for record in records(stream, per_file, seed):
                handle.write(json.dumps(record) + "\n")
                if rng.random() < bad_rate:
                    handle.write(rng.choice(BAD_LINES) + "\n")
        with open(path, "rb") as written:
            counts[name] = sum(1 for _ in written)
    return counts


_RULES = (
    "<important_rules>\n  You are in chat mode.\n\n  Always include the language and file name in the info string "
    "when you write code blocks, for example '```python file.py'.\n</important_rules>"
)


def _code_block(rng: random.Random, lines: int) -> str:
    body = "\n".join(
        f"    value_{n} = compute(item_{rng.randrange(1000)}, limit={rng.randrange(10, 99)})  # step {n}"
        for n in range(lines)
    )
    return f"```python src/module_{rng.randrange(100)}.py\ndef handler(items):\n{body}\n    return items\n```"


def large_chat(rng: random.Random, i: int, target_bytes: int) -> dict[str, object]:
    """A Continue chatInteraction as Continue renders it: system text, attached files, earlier turns, the question."""
    question = f"why does handler {i} return the items unchanged when the limit is {rng.randrange(10, 99)}?"
    earlier = "".join(
        f"<user>\nearlier question {n} about module {rng.randrange(100)}\n\n<assistant>\nearlier answer {n}.\n\n"
        for n in range(rng.randrange(1, 4))
    )
    prompt = f"<system>\nYou are a helpful coding assistant.\n{_RULES}\n\n{earlier}<user>\n"
    blocks = ""
    while len(prompt) + len(blocks) < target_bytes:
        blocks += _code_block(rng, 20) + "\n\n"
    prompt += f"{blocks}{question}\n\n"
    completion = "<think>\nThe loop assigns but never returns.\n</think>\n" + "Return the new list. " * 20
    return {
        "eventName": "chatInteraction",
        "schema": "0.2.0",
        "timestamp": f"2026-11-{1 + i % 28:02d}T10:00:00.000Z",
        "userId": "",
        "userAgent": "Visual Studio Code/1.98.2 (Continue/1.2.16)",
        "selectedProfileId": "local",
        "sessionId": f"session-{i // 4}",
        "modelTitle": "Qwen2.5-Coder 7B",
        "modelProvider": "ollama",
        "prompt": prompt,
        "completion": completion,
        "tools": [],
        "rules": [],
    }


def write_large_chats(directory: Path, count: int, seed: int = 0) -> Path:
    """`count` Continue chat lines of 10-20 KB each under `dev_data/0.2.0/`; return the file."""
    rng = random.Random(seed)
    path = directory / "dev_data" / "0.2.0" / "chatInteraction.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as handle:
        for i in range(count):
            handle.write(json.dumps(large_chat(rng, i, rng.randrange(10_000, 20_000))) + "\n")
    return path
