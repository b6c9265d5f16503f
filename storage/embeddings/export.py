"""Export a sentence-transformers model folder to ONNX, once, in its own process (it imports torch).

`python -m storage.embeddings.export MODEL_DIR OUT_FILE` traces the transformer with dynamic batch and
sequence axes, then checks the file against sentence-transformers itself on `FIDELITY_TEXTS`: every text's
cosine must be at least `MIN_COSINE`, or nothing is written. The file is written atomically and owner-only;
a JSON line on stdout says what was measured. `python -m storage.embeddings.export --bundled` exports the
bundled model into the default cache (what `scripts/bootstrap` runs at install).
"""

from __future__ import annotations

import json
import os
import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from storage.embeddings.base import bundled_embedding_path
from storage.embeddings.onnx_encoder import OnnxEncoder, exported_model
from storage.files import replacing

MIN_COSINE = 0.9999
OPSET = 17
INPUTS = ("input_ids", "attention_mask", "token_type_ids")

# What skilld embeds: questions of every length, code, prose answers, other scripts, and texts past the
# model's 256-token window (truncated the same way by both runtimes).
FIDELITY_TEXTS = [
    "How do I list files?",
    "x",
    "",
    "How do I undo the last git commit but keep my changes staged?",
    "Why does my React component re-render on every keystroke after I added useEffect?",
    "Use `git reset --soft HEAD~1`: the commit is undone and its changes stay staged.",
    "def parse(ts: str) -> datetime:\n    return datetime.fromisoformat(ts.replace('Z', '+00:00'))",
    "SELECT o.id, c.name FROM orders o JOIN customers c ON c.id = o.customer_id WHERE o.total > 100;",
    "Wie konfiguriere ich eine statische IP-Adresse unter NixOS?",
    "日本語のテキストを正規化するには unicodedata.normalize('NFKC', s) を使います。",
    'ERROR: relation "users" does not exist at character 15',
    "Restart=on-failure in [Service], then systemctl --user enable --now skilld.service",
    " ".join(["The retry loop backs off exponentially and gives up after five attempts."] * 40),
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nfix the flaky test<|im_end|>",
]


def cosines(model_dir: Path, onnx_file: Path, texts: list[str]) -> list[float]:
    """Per text, the cosine between the ONNX vector and sentence-transformers' own (both unit length)."""
    from storage.embeddings.torch_encoder import TorchEncoder

    reference = TorchEncoder(model_dir).encode(texts, 8)
    candidate = OnnxEncoder(model_dir, onnx_file).encode(texts, 8)
    return [float(c) for c in np.sum(reference * candidate, axis=1)]


def halve_token_table(path: Path) -> None:
    """Keep the token-embedding table (30522 x 384, half the model) in float16, widened after the lookup.

    The table is only ever indexed, so ONNX Runtime cannot fold the widening back into a float32 copy: the
    daemon holds 23 MB less, and a looked-up row differs from the float32 one by float16 rounding only (the
    fidelity check below still holds every text to MIN_COSINE).
    """
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    model = onnx.load(str(path))
    tables = {t.name: t for t in model.graph.initializer}
    for node in model.graph.node:
        if node.op_type != "Gather" or node.input[0] not in tables or "word_embeddings" not in node.input[0]:
            continue
        table = tables[node.input[0]]
        table.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(table).astype(np.float16), table.name))
        wide, narrow = node.output[0], f"{node.output[0]}_float16"
        node.output[0] = narrow
        cast = helper.make_node("Cast", [narrow], [wide], name=f"{node.name}_widen", to=TensorProto.FLOAT)
        model.graph.node.insert(list(model.graph.node).index(node) + 1, cast)
        break
    else:
        raise RuntimeError("the exported graph has no token-embedding lookup")
    onnx.save(model, str(path))


def export(model_dir: Path, out: Path) -> dict[str, Any]:
    """Trace the model to `out` and check it; raises if any fidelity text falls below MIN_COSINE."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    from transformers import AutoModel

    base = AutoModel.from_pretrained(str(model_dir)).eval()

    class Hidden(torch.nn.Module):
        """The transformer's last hidden state: pooling happens in the runtime."""

        def __init__(self) -> None:
            super().__init__()
            self.base = base

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            return self.base(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state

    sample = torch.ones((2, 16), dtype=torch.long)
    axes = {0: "batch", 1: "tokens"}
    with replacing(out) as partial, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with torch.no_grad():
            torch.onnx.export(
                Hidden().eval(),
                (sample, torch.ones_like(sample), torch.zeros_like(sample)),
                str(partial),
                input_names=list(INPUTS),
                output_names=["last_hidden_state"],
                dynamic_axes={name: axes for name in [*INPUTS, "last_hidden_state"]},
                opset_version=OPSET,
                dynamo=False,
            )
        halve_token_table(partial)
        measured = cosines(model_dir, partial, FIDELITY_TEXTS)
        worst = min(measured)
        if worst < MIN_COSINE:
            raise RuntimeError(f"the ONNX export differs from sentence-transformers (lowest cosine {worst:.6f})")
    return {"model": str(model_dir), "onnx": str(out), "texts": len(measured), "min_cosine": round(worst, 7)}


def main(argv: list[str]) -> int:
    if argv == ["--bundled"]:
        print(json.dumps({"onnx": str(exported_model(bundled_embedding_path()))}))
        return 0
    if len(argv) != 2:
        print("usage: python -m storage.embeddings.export MODEL_DIR OUT_FILE | --bundled", file=sys.stderr)
        return 2
    try:
        print(json.dumps(export(Path(argv[0]), Path(argv[1]))))
    except Exception as exc:  # the parent reports the last line
        print(f"{type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
