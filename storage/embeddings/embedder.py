"""Sentence embeddings for skilld: one runtime (ONNX by default, torch for reference), batched, cached by text."""

from __future__ import annotations

import hashlib
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Literal

import numpy as np

from storage.embeddings.base import Encoder, Vectors, bundled_embedding_path

Runtime = Literal["onnx", "torch"]


def open_encoder(model_path: Path | None, runtime: Runtime, threads: int = 0, cache_dir: Path | None = None) -> Encoder:
    """The encoder for a model folder (the bundled all-MiniLM-L6-v2 by default) on the given runtime."""
    path = model_path or bundled_embedding_path()
    if runtime == "torch":
        from storage.embeddings.torch_encoder import TorchEncoder

        return TorchEncoder(path)
    from storage.embeddings.onnx_encoder import OnnxEncoder, exported_model

    return OnnxEncoder(path, exported_model(path, cache_dir), threads)


class Embedder:
    """Unit-length float32 vectors for texts; repeated texts are served from an LRU cache.

    The runtime loads on first use and may be released when idle (`release`); the next text loads it again
    (ONNX: about 0.4 s, measured), so a long-idle daemon holds neither the weights nor the cache.
    """

    def __init__(
        self,
        model_path: Path | None = None,
        batch_size: int = 64,
        cache_size: int = 50_000,
        runtime: Runtime = "onnx",
        threads: int = 0,
        cache_dir: Path | None = None,
    ) -> None:
        self._open: Callable[[], Encoder] = lambda: open_encoder(model_path, runtime, threads, cache_dir)
        self._encoder: Encoder | None = self._open()
        self.dimensions = self._encoder.dimensions
        self.runtime = self._encoder.runtime
        self.batch_size = batch_size
        self.cache_size = cache_size
        self._cache: OrderedDict[bytes, Vectors] = OrderedDict()
        self._lock = threading.Lock()
        self.encoded = 0  # texts actually run through the model (for metrics and tests)
        self.used = time.monotonic()  # when a text was last asked for

    @property
    def encoder(self) -> Encoder:
        """The runtime, loaded again if it was released."""
        with self._lock:
            if self._encoder is None:
                self._encoder = self._open()
            return self._encoder

    @property
    def loaded(self) -> bool:
        return self._encoder is not None

    def release(self) -> None:
        """Drop the runtime and the cache; the next text loads the runtime again."""
        with self._lock:
            self._encoder = None
            self._cache.clear()

    @staticmethod
    def _key(text: str) -> bytes:
        return hashlib.blake2b(text.encode("utf-8", "replace"), digest_size=16).digest()

    def encode(self, texts: list[str]) -> Vectors:
        """One row per text."""
        keys = [self._key(t) for t in texts]
        self.used = time.monotonic()
        with self._lock:
            missing = {k: t for k, t in zip(keys, texts, strict=True) if k not in self._cache}
        encoder = self.encoder
        if missing:
            fresh = encoder.encode(list(missing.values()), self.batch_size)
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
                    vector = encoder.encode([texts[i]], 1)[0]
                else:
                    self._cache.move_to_end(key)
                out[i] = vector
        return out

    def encode_one(self, text: str) -> Vectors:
        """One text's vector."""
        vector: Vectors = self.encode([text])[0]
        return vector
