"""The reference runtime: sentence-transformers on PyTorch (imports torch; the daemon uses ONNX)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from storage.embeddings.base import DIMENSIONS, Vectors


class TorchEncoder:
    """sentence-transformers' own encoder, on the CPU."""

    runtime = "torch"

    def __init__(self, model_path: Path) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
        self.model = SentenceTransformer(str(model_path), device="cpu")
        self.dimensions = int(self.model.get_embedding_dimension() or DIMENSIONS)

    def encode(self, texts: list[str], batch_size: int) -> Vectors:
        """Unit-length rows, one per text."""
        vectors = self.model.encode(
            texts, batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
        )
        return np.asarray(vectors, dtype=np.float32)
