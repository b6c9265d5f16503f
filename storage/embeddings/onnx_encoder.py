"""The daemon's runtime: the sentence-transformers model exported once to ONNX, run by ONNX Runtime.

No torch here: the tokenizer is the model's own `tokenizer.json` run by Hugging Face `tokenizers`, the
transformer runs in ONNX Runtime, and pooling and normalisation are numpy, as sentence-transformers does
them. The export itself needs torch, so it runs once in a child process (`storage/embeddings/export.py`)
and the file is cached under the user's cache folder, keyed by the model's files; a concurrent first use
by another process waits for it instead of exporting twice.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np

from storage.embeddings.base import Vectors
from storage.files import PRIVATE_DIR, PRIVATE_FILE

# Bump when the exported graph changes shape (inputs, outputs, opset): every cached export is redone.
EXPORT_FORMAT = 2
EXPORT_SECONDS = 600
# Tokens in one call of the model (texts x padded width): bounds the memory of a batch of long texts.
MAX_BATCH_TOKENS = 2048  # generous: loading torch and the model on a busy 2-core machine


class EmbeddingError(Exception):
    """The embedding model cannot be run: one line saying what and what to do."""


def default_cache_dir() -> Path:
    """Where exported models are kept: $XDG_CACHE_HOME/skilld/embeddings (~/.cache by default)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "skilld" / "embeddings"


def model_card(model_dir: Path) -> tuple[int, str]:
    """The model's maximum sequence length and pooling mode ("mean" or "cls"), from its sentence-transformers files."""
    try:
        card = json.loads((model_dir / "sentence_bert_config.json").read_text())
        modules = json.loads((model_dir / "modules.json").read_text())
    except (OSError, ValueError) as exc:
        raise EmbeddingError(f"{model_dir} is not a sentence-transformers model folder ({exc})") from exc
    pooling_dir = next((m.get("path", "") for m in modules if str(m.get("type", "")).endswith(".Pooling")), None)
    if pooling_dir is None:
        raise EmbeddingError(f'{model_dir} has no pooling module: set embedding.backend = "torch" for it')
    pooling = json.loads((model_dir / pooling_dir / "config.json").read_text())
    if pooling.get("pooling_mode_mean_tokens"):
        mode = "mean"
    elif pooling.get("pooling_mode_cls_token"):
        mode = "cls"
    else:
        raise EmbeddingError(f'{model_dir} pools in a way the ONNX runtime does not: set embedding.backend = "torch"')
    return int(card.get("max_seq_length") or 512), mode


def model_key(model_dir: Path) -> str:
    """A key for the model's files as they are now (path, sizes, times) and the export format."""
    digest = hashlib.blake2b(f"{EXPORT_FORMAT}|{model_dir.resolve()}".encode(), digest_size=10)
    for name in sorted(os.listdir(model_dir)):
        path = model_dir / name
        if path.is_file():
            stat = path.stat()
            digest.update(f"|{name}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    return digest.hexdigest()


def exported_model(model_dir: Path, cache_dir: Path | None = None) -> Path:
    """The ONNX file for a model folder: from the cache, or exported now in a child process (which needs torch)."""
    model_card(model_dir)  # not a model folder: say so now, not after a child has loaded torch
    root = cache_dir or default_cache_dir()
    cache = root / model_key(model_dir)
    target = cache / "model.onnx"
    if target.is_file():
        return target
    root.parent.parent.mkdir(parents=True, exist_ok=True)
    for folder in (root.parent, root, cache):  # skilld/, embeddings/, the model's key: owner-only when created
        folder.mkdir(exist_ok=True, mode=PRIVATE_DIR)
    with open(os.open(cache / ".lock", os.O_WRONLY | os.O_CREAT, PRIVATE_FILE), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another process exporting the same model: wait for its file
        if target.is_file():
            return target
        command = [sys.executable, "-m", "storage.embeddings.export", str(model_dir), str(target)]
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=EXPORT_SECONDS, check=False)
        except subprocess.TimeoutExpired as exc:
            raise EmbeddingError(f"exporting {model_dir} to ONNX took over {EXPORT_SECONDS} s") from exc
        if done.returncode != 0 or not target.is_file():
            last = (done.stderr.strip().splitlines() or ["no output"])[-1]
            raise EmbeddingError(f"exporting {model_dir} to ONNX failed: {last}")
    return target


class OnnxEncoder:
    """The exported transformer in ONNX Runtime, with the model's own tokenizer and pooling."""

    runtime = "onnx"

    def __init__(self, model_dir: Path, onnx_file: Path, threads: int = 0) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        self.max_length, self.pooling = model_card(model_dir)
        try:
            self.tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        except Exception as exc:  # tokenizers raises a bare Exception for a missing or unreadable file
            raise EmbeddingError(f"{model_dir} has no usable tokenizer.json ({exc})") from exc
        self.tokenizer.no_padding()  # batches are padded here, each to its own longest text
        self.tokenizer.enable_truncation(self.max_length)
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        # No arena: a batch's buffers go back to the system after it, so the daemon does not keep the
        # high-water mark of its longest batch for the rest of the day (measured: no slower).
        options.enable_cpu_mem_arena = False
        # Threads that sleep between calls instead of spinning: on a 2-core workstation a spinning pool takes
        # the CPU from the request that is waiting for it (and idle CPU stays ~0).
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            self.session = ort.InferenceSession(str(onnx_file), options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # a truncated or corrupt file: ONNX Runtime's own error, in one line
            raise EmbeddingError(f"{onnx_file} cannot be loaded: {str(exc).splitlines()[0]}") from exc
        self.inputs = {i.name for i in self.session.get_inputs()}
        self.dimensions = int(self.session.get_outputs()[0].shape[-1])

    def encode(self, texts: list[str], batch_size: int) -> Vectors:
        """Unit-length rows, one per text; texts of like length are batched together to pad little."""
        encodings = self.tokenizer.encode_batch(texts)
        order = sorted(range(len(texts)), key=lambda i: -len(encodings[i].ids))
        out = np.empty((len(texts), self.dimensions), dtype=np.float32)
        start = 0
        while start < len(order):
            # Longest first, so the first text sets the batch's width; long texts go in smaller batches,
            # since attention's memory grows with batch x width^2 (64 texts of 256 tokens took over 1 GB).
            width = max(1, len(encodings[order[start]].ids))
            size = max(1, min(batch_size, MAX_BATCH_TOKENS // width))
            batch = order[start : start + size]
            out[batch] = self._run([encodings[i] for i in batch])
            start += size
        return out

    def _run(self, encodings: list[Any]) -> Vectors:
        width = max(len(e.ids) for e in encodings)
        ids = np.zeros((len(encodings), width), dtype=np.int64)
        mask = np.zeros_like(ids)
        types = np.zeros_like(ids)
        for row, encoding in enumerate(encodings):
            n = len(encoding.ids)
            ids[row, :n] = encoding.ids
            mask[row, :n] = encoding.attention_mask
            types[row, :n] = encoding.type_ids
        feed = {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
        hidden = self.session.run(None, {k: v for k, v in feed.items() if k in self.inputs})[0]
        if self.pooling == "cls":
            pooled = hidden[:, 0]
        else:
            weights = mask[..., None].astype(np.float32)
            pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        return np.asarray(pooled / np.clip(norms, 1e-12, None), dtype=np.float32)
