"""The ONNX runtime embeds as sentence-transformers does, so vectors stored by either stay valid."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from storage.embeddings import Embedder, EmbeddingError, bundled_embedding_path
from storage.embeddings.export import FIDELITY_TEXTS, MIN_COSINE
from storage.embeddings.onnx_encoder import OnnxEncoder, exported_model, model_key
from storage.embeddings.torch_encoder import TorchEncoder

pytestmark = pytest.mark.slow

# Written here in the shapes skilld embeds: questions from chats, an agent's task, a rendered prompt, an
# answer with code, and near-duplicates whose merge decision must not change.
TEXTS = [
    "How do I undo my last git commit but keep the changes staged?",
    "revert the most recent commit in git without losing my work",
    "How do I read a CSV file into a pandas DataFrame?",
    "load a csv with pandas",
    "Add a retry with exponential backoff to the HTTP client",
    "retry failed http requests with growing delays",
    "Why does `docker compose up` say the port is already allocated?",
    "```python\nfor attempt in range(5):\n    try:\n        return send()\n    except Timeout:\n        sleep(2)\n```",
    "<file_path>src/app.ts</file_path>\n```ts\nexport const x = 1;\n```\nExplain what this module exports.",
    "What is the capital of France?",
    "Configure a static IPv4 address for eth0 in NixOS configuration.nix",
    "Set networking.interfaces.eth0.ipv4.addresses in configuration.nix.",
]


@pytest.fixture(scope="module")
def runtimes() -> tuple[TorchEncoder, OnnxEncoder]:
    path = bundled_embedding_path()
    return TorchEncoder(path), OnnxEncoder(path, exported_model(path))


def test_every_text_embeds_within_fp32_fidelity_of_sentence_transformers(
    runtimes: tuple[TorchEncoder, OnnxEncoder],
) -> None:
    reference, onnx = runtimes
    texts = [*FIDELITY_TEXTS, *TEXTS]
    expected = reference.encode(texts, 4)
    got = onnx.encode(texts, 4)
    assert got.shape == expected.shape == (len(texts), 384)
    cosines = np.sum(expected * got, axis=1)
    worst = int(np.argmin(cosines))
    assert cosines[worst] >= MIN_COSINE, (texts[worst][:80], float(cosines[worst]))
    assert np.allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)


def test_batching_and_padding_do_not_change_a_vector(runtimes: tuple[TorchEncoder, OnnxEncoder]) -> None:
    _, onnx = runtimes
    alone = np.stack([onnx.encode([t], 1)[0] for t in TEXTS])
    together = onnx.encode(TEXTS, 5)  # long and short texts share batches, padded to the longest
    assert np.min(np.sum(alone * together, axis=1)) >= 0.99999


PARAPHRASES = {  # a question, and the stored texts (by index in TEXTS) that say the same
    "take back my previous git commit, changes kept": {0, 1},
    "pandas: open a .csv as a dataframe": {2, 3},
    "make HTTP calls retry with exponential delays": {4, 5},
    "port already in use when starting docker compose": {6},
    "give eth0 a fixed IP on NixOS": {10, 11},
}


def test_a_vector_stored_by_torch_is_found_by_an_onnx_query_as_before(
    runtimes: tuple[TorchEncoder, OnnxEncoder],
) -> None:
    reference, onnx = runtimes
    stored = reference.encode(TEXTS, 4)  # what an older skilld stored
    queries = list(PARAPHRASES)
    before = reference.encode(queries, 4) @ stored.T
    after = onnx.encode(queries, 4) @ stored.T
    for best, same in zip(np.argmax(after, axis=1), PARAPHRASES.values(), strict=True):
        assert int(best) in same
    assert (np.argsort(-before, axis=1) == np.argsort(-after, axis=1)).all()  # every rank the same
    assert np.max(np.abs(before - after)) < 1e-3  # so every merge and search threshold decides the same


def test_the_export_is_made_once_and_kept_owner_only(tmp_path: Path) -> None:
    model = tmp_path / "model"
    shutil.copytree(bundled_embedding_path(), model)
    cache = tmp_path / "cache" / "embeddings"
    first = exported_model(model, cache)
    assert first.stat().st_mode & 0o077 == 0 and cache.stat().st_mode & 0o077 == 0
    made = first.stat().st_mtime_ns
    assert exported_model(model, cache) == first and first.stat().st_mtime_ns == made  # from the cache
    vectors = Embedder(model, runtime="onnx", cache_dir=cache).encode(["How do I list files?"])
    assert vectors.shape == (1, 384)
    key = model_key(model)
    (model / "config.json").touch()
    os.utime(model / "config.json", ns=(made + 10**9, made + 10**9))
    assert model_key(model) != key  # changed weights or config: exported again, the old file never reused


def test_a_corrupt_export_is_one_clear_error(tmp_path: Path) -> None:
    broken = tmp_path / "model.onnx"
    broken.write_bytes(b"not an onnx file")
    with pytest.raises(EmbeddingError, match="cannot be loaded"):
        OnnxEncoder(bundled_embedding_path(), broken)


def test_a_folder_that_is_not_a_sentence_transformers_model_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(EmbeddingError, match="not a sentence-transformers model folder"):
        exported_model(tmp_path, tmp_path / "cache")
