"""Sentence embeddings: the bundled all-MiniLM-L6-v2 in ONNX Runtime (no torch), or in sentence-transformers."""

from storage.embeddings.base import DIMENSIONS, Encoder, Vectors, bundled_embedding_path
from storage.embeddings.embedder import Embedder, Runtime, open_encoder
from storage.embeddings.onnx_encoder import EmbeddingError

__all__ = [
    "DIMENSIONS",
    "Embedder",
    "EmbeddingError",
    "Encoder",
    "Runtime",
    "Vectors",
    "bundled_embedding_path",
    "open_encoder",
]
