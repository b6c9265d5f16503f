"""The training child process: `python -m daemon.finetune.train JOB.json`; JSON progress lines on stdout.

It runs at a lower priority, so ingestion and extraction keep flowing in the daemon while it trains.
It loads the base GGUF through transformers (dequantized), measures held-out loss, trains a PEFT LoRA on
the assistant turns, measures again, and exports the adapter as GGUF for llama.cpp.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import sys
import time
from pathlib import Path
from typing import Any

from daemon.finetune.data import Example, batches, encode
from daemon.finetune.export import architecture_of, export_gguf_lora, supported
from storage.datasets import read_records


class TrainingError(Exception):
    """A training job that cannot run (too little memory, unsupported model); one line for the user."""


def emit(event: str, **fields: Any) -> None:
    """One progress line for the parent."""
    sys.stdout.write(json.dumps({"event": event, **fields}) + "\n")
    sys.stdout.flush()


def _available_bytes(device: str) -> int:
    if device == "cuda":
        import torch

        free, _ = torch.cuda.mem_get_info()
        return int(free)
    with open("/proc/meminfo") as handle:
        info = dict(line.split(":", 1) for line in handle)
    return int(info["MemAvailable"].split()[0]) * 1024


def _parameters(gguf_path: Path) -> int:
    from gguf import GGUFReader

    return sum(int(t.n_elements) for t in GGUFReader(str(gguf_path)).tensors)


def choose_dtype(gguf_path: Path, device: str) -> str:
    """fp32, or bf16 where the hardware has it or fp32 would not fit; refuse when neither fits."""
    import torch

    params = _parameters(gguf_path)
    available = _available_bytes(device)
    need = {"float32": params * 4 * 1.3 + 512e6, "bfloat16": params * 2 * 1.3 + 512e6}
    bf16_native = device == "cuda" and torch.cuda.is_bf16_supported()
    for dtype in ("bfloat16", "float32") if bf16_native else ("float32", "bfloat16"):
        if need[dtype] <= available:
            return dtype
    raise TrainingError(
        f"the base model ({params / 1e9:.1f}B parameters) needs about {need['bfloat16'] / 1e9:.1f} GB to train, "
        f"{available / 1e9:.1f} GB is available; use a smaller base model or a GPU"
    )


def mean_loss(model: Any, examples: list[Example], pad_id: int, device: str) -> float:
    """Mean token loss over the assistant turns."""
    import torch

    total, count = 0.0, 0
    model.eval()
    with torch.no_grad():
        for ids, mask, labels in batches(examples, 4, pad_id):
            logits = model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits.float()
            shift_logits, shift_labels = logits[:, :-1].reshape(-1, logits.shape[-1]), labels[:, 1:].reshape(-1)
            losses = torch.nn.functional.cross_entropy(
                shift_logits, shift_labels.to(device), reduction="sum", ignore_index=-100
            )
            total += float(losses)
            count += int((shift_labels != -100).sum())
    return total / max(count, 1)


def run(job: dict[str, Any]) -> dict[str, Any]:
    """Train one candidate adapter; return its metrics."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
    hf_logging.set_verbosity_error()  # type: ignore[no-untyped-call]
    torch.manual_seed(int(job.get("seed", 0)))
    base = Path(job["base_model"])
    arch = architecture_of(base)
    supported(arch)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    dtype = choose_dtype(base, device)
    emit("loading", base=str(base), arch=arch, device=device, dtype=dtype)
    tokenizer = AutoTokenizer.from_pretrained(str(base.parent), gguf_file=base.name)
    loaded: Any = AutoModelForCausalLM.from_pretrained(
        str(base.parent), gguf_file=base.name, dtype=getattr(torch, dtype)
    )
    model = loaded.to(device)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    h = job["hyperparameters"]
    train = encode(read_records(Path(job["train"])), tokenizer, int(h["max_length"]))
    held_out = encode(read_records(Path(job["validation"])), tokenizer, int(h["max_length"]))
    if not train or not held_out:
        raise TrainingError("the dataset has no trainable examples after tokenization")
    loss_before = mean_loss(model, held_out, pad_id, device)
    config = LoraConfig(
        r=int(h["lora_r"]),
        lora_alpha=int(h["lora_alpha"]),
        lora_dropout=0.0,
        bias="none",
        target_modules=list(h["target_modules"]),
        task_type="CAUSAL_LM",
    )
    peft_model = get_peft_model(model, config)
    optimizer = torch.optim.AdamW([p for p in peft_model.parameters() if p.requires_grad], lr=float(h["learning_rate"]))
    per_epoch = batches(train, int(h["batch_size"]), pad_id)
    steps = int(h["max_steps"]) or len(per_epoch) * int(h["epochs"])
    started, tokens = time.perf_counter(), 0
    peft_model.train()
    for step in range(1, steps + 1):
        ids, mask, labels = per_epoch[(step - 1) % len(per_epoch)]
        loss = peft_model(input_ids=ids.to(device), attention_mask=mask.to(device), labels=labels.to(device)).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        tokens += int(mask.sum())
        elapsed = time.perf_counter() - started
        emit(
            "progress",
            step=step,
            steps=steps,
            loss=round(float(loss), 4),
            tokens_per_s=round(tokens / elapsed, 1),
            eta_s=round(elapsed / step * (steps - step), 1),
        )
    train_seconds = time.perf_counter() - started
    loss_after = mean_loss(peft_model, held_out, pad_id, device)
    adapter = Path(job["adapter"])
    adapted = export_gguf_lora(peft_model.state_dict(), model.config, arch, float(h["lora_alpha"]), adapter)
    return {
        "adapter": str(adapter),
        "arch": arch,
        "device": device,
        "dtype": dtype,
        "steps": steps,
        "train_examples": len(train),
        "held_out_examples": len(held_out),
        "adapted_weights": adapted,
        "loss_before": round(loss_before, 5),
        "loss_after": round(loss_after, 5),
        "tokens_per_s": round(tokens / train_seconds, 1) if train_seconds else 0.0,
        "train_seconds": round(train_seconds, 2),
        "loss_is_finite": math.isfinite(loss_after),
    }


def main() -> None:
    job = json.loads(Path(sys.argv[1]).read_text())
    with contextlib.suppress(OSError):
        os.nice(int(job.get("nice", 10)))
    try:
        emit("done", **run(job))
    except TrainingError as exc:
        emit("error", error=str(exc))
        sys.exit(3)
    except Exception as exc:  # reported to the parent as one line; the traceback goes to stderr
        import traceback

        traceback.print_exc()
        emit("error", error=f"{type(exc).__name__}: {exc}")
        sys.exit(1)


if __name__ == "__main__":
    main()
