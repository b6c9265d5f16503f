"""The fine-tuning dataset (OpenAI chat JSONL) and the preference pairs from user corrections.

The class owns the files under `<home>/datasets/`: where they are, how many examples they hold, and the
removal of an interaction's records, also from exported splits (`train.jsonl`, `validation.jsonl`). Those
work on a home without opening the vector store, so `skilld status` and `forget` load no model for them.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from storage.events import now_iso
from storage.files import append_line, write_atomic
from storage.vectors.base import EXAMPLES, VectorPoint, VectorStore, point_id

if TYPE_CHECKING:
    from storage.embeddings import Embedder

SYSTEM_PROMPT = "You are a helpful, precise coding assistant running locally."
TRAIN, VALIDATION = "train.jsonl", "validation.jsonl"  # the files of an export, in its directory


def _append(path: Path, record: dict[str, Any]) -> None:
    """Append one JSON line and fsync it (owner-only file)."""
    append_line(path, json.dumps(record, ensure_ascii=False))


def read_records(path: Path) -> list[dict[str, Any]]:
    """Every record of a JSONL dataset file."""
    if not path.exists():
        return []
    with open(path, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def trainable(record: dict[str, Any]) -> bool:
    """Whether a record may be trained on: not retired by a re-check."""
    return not record.get("metadata", {}).get("retired")


def drop_interactions(path: Path, keys: Iterable[str]) -> int:
    """Drop the records of these interactions from a JSONL file (atomically); return how many.

    A line that does not parse (a torn last line) is kept as it is: forget removes, it never loses.
    """
    wanted = set(keys)
    if not path.exists() or not wanted:
        return 0
    kept: list[str] = []
    removed = 0
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            try:
                key = json.loads(line).get("metadata", {}).get("interaction")
            except (ValueError, AttributeError):
                key = None
            if key is not None and str(key) in wanted:
                removed += 1
            else:
                kept.append(line)
    if removed:
        write_atomic(path, kept)
    return removed


@dataclass(frozen=True)
class Removed:
    """Records removed from the datasets."""

    examples: int
    preferences: int


class Datasets:
    """`datasets/finetune.jsonl` and `datasets/preferences.jsonl` under the home."""

    def __init__(self, home: Path, vectors: VectorStore, embedder: Embedder, dedup_threshold: float) -> None:
        self.home = home
        self.root = home / "datasets"
        self.finetune = self.path(home)
        self.preferences = self.preferences_path(home)
        self.vectors = vectors
        self.embedder = embedder
        self.dedup_threshold = dedup_threshold
        vectors.ensure_collection(EXAMPLES, embedder.dimensions)

    # -- the files, for everyone (no vector store needed) -------------------------------------------------------
    @staticmethod
    def path(home: Path) -> Path:
        """The fine-tuning dataset of a home."""
        return home / "datasets" / "finetune.jsonl"

    @staticmethod
    def preferences_path(home: Path) -> Path:
        """The preference pairs of a home."""
        return home / "datasets" / "preferences.jsonl"

    @classmethod
    def count_examples(cls, home: Path) -> int:
        """Records in the fine-tuning dataset that may be trained on (retired ones left out), without parsing."""
        path = cls.path(home)
        if not path.exists():
            return 0
        with open(path, "rb") as handle:
            # The encoder writes this key with bare quotes; inside a string value its quotes would be escaped.
            return sum(1 for line in handle if line.strip() and b'"retired": {' not in line)

    @classmethod
    def remove_interactions(cls, home: Path, keys: Iterable[str]) -> Removed:
        """Drop these interactions' examples and preference pairs from a home's datasets."""
        wanted = set(keys)
        return Removed(drop_interactions(cls.path(home), wanted), drop_interactions(cls.preferences_path(home), wanted))

    @staticmethod
    def remove_from_export(directory: Path, keys: Iterable[str]) -> int:
        """Drop these interactions' records from an export's train and validation files; return how many."""
        wanted = set(keys)
        return sum(drop_interactions(directory / name, wanted) for name in (TRAIN, VALIDATION))

    # -- writing -------------------------------------------------------------------------------------------------
    def _recently_written(self, path: Path, key: str, window: int = 256 * 1024) -> bool:
        """Whether one of the last records already is for this interaction (a retry after a crash).

        A retired record does not count: its interaction may be extracted again, and well this time.
        """
        if not path.exists():
            return False
        with open(path, "rb") as handle:
            handle.seek(max(0, path.stat().st_size - window))
            tail = handle.read().decode("utf-8", "replace")
        needle = f'"interaction": {json.dumps(key)}'
        return any(needle in line and '"retired": {' not in line for line in tail.splitlines())

    def add_example(self, query: str, response: str, metadata: dict[str, Any]) -> bool:
        """Append one chat example unless one at or above the dedup similarity exists; return whether added."""
        key = str(metadata["interaction"])
        example_id = point_id("example", key)
        vector = self.embedder.encode_one(f"{query}\n{response}")
        near = [
            h for h in self.vectors.search(EXAMPLES, vector, 2, threshold=self.dedup_threshold) if h.id != example_id
        ]
        if near or self._recently_written(self.finetune, key):
            return False
        record = {
            "messages": [
                {"role": "system", "content": SYSTEM_PROMPT},
                {"role": "user", "content": query},
                {"role": "assistant", "content": response},
            ],
            "metadata": {**metadata, "created_at": now_iso()},
        }
        # The vector first: if we crash before the line is written, the retry finds only itself.
        self.vectors.upsert(
            EXAMPLES, [VectorPoint(example_id, vector, {"interaction": key, "source": metadata.get("source", "")})]
        )
        _append(self.finetune, record)
        return True

    def add_preference(self, prompt: str, chosen: str, rejected: str, metadata: dict[str, Any]) -> None:
        """Append a preference pair from a user's correction."""
        _append(
            self.preferences,
            {
                "prompt": prompt,
                "chosen": chosen,
                "rejected": rejected,
                "metadata": {**metadata, "created_at": now_iso()},
            },
        )

    def retire(self, why: Callable[[dict[str, Any]], str | None], gate: int) -> list[str]:
        """Mark the records `why` gives a reason for as retired (kept, never trained on); their interactions.

        A retired record's dedup vector goes too, so a good example of the same exchange can take its place.
        """
        if not self.finetune.exists():
            return []
        lines: list[str] = []
        retired: list[str] = []
        with open(self.finetune, encoding="utf-8") as handle:
            for line in handle:
                try:
                    record = json.loads(line)
                    reason = why(record) if trainable(record) else None
                except (ValueError, AttributeError, KeyError, TypeError):
                    reason = None  # a torn line is kept as it is: a re-check never loses data
                if reason is None:
                    lines.append(line)
                    continue
                key = str(record["metadata"].get("interaction", ""))
                record["metadata"]["retired"] = {"reason": reason, "at": now_iso(), "gate": gate}
                lines.append(json.dumps(record, ensure_ascii=False) + "\n")
                retired.append(key)
        if retired:
            write_atomic(self.finetune, lines)
            self.vectors.delete(EXAMPLES, [point_id("example", key) for key in retired if key])
        return retired

    def forget(self, keys: set[str]) -> Removed:
        """Remove these interactions' records and their dedup vectors (`skilld forget`)."""
        if not keys:
            return Removed(0, 0)
        self.vectors.delete(EXAMPLES, [point_id("example", k) for k in sorted(keys)])
        return self.remove_interactions(self.home, keys)

    # -- reading ---------------------------------------------------------------------------------------------------
    def stats(self) -> dict[str, Any]:
        """Sizes of the datasets, by source, with a rough token count (retired records counted apart)."""
        every = read_records(self.finetune)
        records = [r for r in every if trainable(r)]
        sources = Counter(str(r.get("metadata", {}).get("source", "?")) for r in records)
        characters = sum(len(m["content"]) for r in records for m in r["messages"])
        return {
            "examples": len(records),
            "retired": len(every) - len(records),
            "preferences": len(read_records(self.preferences)),
            "by_source": dict(sources),
            "approx_tokens": characters // 4,
            "bytes": self.finetune.stat().st_size if self.finetune.exists() else 0,
            "path": str(self.finetune),
        }

    def added_per_day(self) -> list[tuple[str, int]]:
        """(day, training examples written that day) of the records still trainable, oldest day first."""
        days = Counter(
            str(r.get("metadata", {}).get("created_at", ""))[:10] for r in read_records(self.finetune) if trainable(r)
        )
        return sorted((day, n) for day, n in days.items() if day)

    def export(self, out: Path, validation_fraction: float) -> dict[str, Any]:
        """Write train.jsonl and validation.jsonl (a stable split by interaction) into a directory."""
        out.mkdir(parents=True, exist_ok=True)
        buckets: list[tuple[float, dict[str, Any]]] = []
        for record in filter(trainable, read_records(self.finetune)):
            key = str(record.get("metadata", {}).get("interaction", json.dumps(record["messages"])))
            buckets.append(
                (int.from_bytes(hashlib.blake2b(key.encode(), digest_size=4).digest(), "big") / 2**32, record)
            )
        # A small dataset whose hashes all miss the fraction still gets one validation example: the lowest bucket.
        floor = min((b for b, _ in buckets), default=0.0) if validation_fraction > 0 and len(buckets) > 1 else -1.0
        train = [r for b, r in buckets if not (b < validation_fraction or b == floor)]
        validation = [r for b, r in buckets if b < validation_fraction or b == floor]
        for name, records in ((TRAIN, train), (VALIDATION, validation)):
            write_atomic(out / name, [json.dumps(r, ensure_ascii=False) + "\n" for r in records])
        return {"train": len(train), "validation": len(validation), "directory": str(out)}
