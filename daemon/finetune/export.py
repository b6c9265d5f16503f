"""Writing a PEFT LoRA as a GGUF adapter that llama.cpp loads (`Llama(lora_path=...)`, `--lora`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from storage.files import replacing


class UnsupportedArchitecture(Exception):
    """A base model whose adapter layout skilld does not know; its message names the supported ones."""


@dataclass(frozen=True)
class Architecture:
    gguf_arch: str
    permute_qk: bool  # llama.cpp stores q/k rows of llama-family models permuted for its rope layout


# By the base GGUF's general.architecture (Mistral GGUFs are written as "llama").
ARCHITECTURES = {
    "llama": Architecture("llama", True),
    "mistral": Architecture("llama", True),
    "qwen2": Architecture("qwen2", False),
    "gemma3": Architecture("gemma3", False),
}


def architecture_of(gguf_path: Path) -> str:
    """The `general.architecture` of a GGUF file."""
    from gguf import GGUFReader

    field = GGUFReader(str(gguf_path)).fields["general.architecture"]
    return bytes(field.parts[field.data[0]]).decode()


def supported(arch: str) -> Architecture:
    """The layout for an architecture, or UnsupportedArchitecture naming the ones that are."""
    if arch not in ARCHITECTURES:
        raise UnsupportedArchitecture(
            f"cannot fine-tune a {arch!r} model; supported architectures: {', '.join(sorted(ARCHITECTURES))}"
        )
    return ARCHITECTURES[arch]


def _permute(weights: np.ndarray[Any, Any], heads: int) -> np.ndarray[Any, Any]:
    """The row permutation llama.cpp's converter applies to q_proj/k_proj (by attention or kv heads)."""
    return (
        weights.reshape(heads, 2, weights.shape[0] // heads // 2, *weights.shape[1:])
        .swapaxes(1, 2)
        .reshape(weights.shape)
    )


def export_gguf_lora(state: Mapping[str, Any], config: Any, arch: str, alpha: float, path: Path) -> int:
    """Write PEFT lora_A/lora_B weights as a GGUF LoRA adapter; return how many weights were adapted."""
    import gguf

    layout = supported(arch)
    names = gguf.get_tensor_name_map(gguf.MODEL_ARCH[layout.gguf_arch.upper()], int(config.num_hidden_layers))
    heads, kv_heads = int(config.num_attention_heads), int(config.num_key_value_heads)
    with replacing(path) as partial:  # renamed when whole: never half an adapter under its name
        writer = gguf.GGUFWriter(str(partial), layout.gguf_arch)
        writer.add_string("general.type", "adapter")
        writer.add_string("adapter.type", "lora")
        writer.add_float32("adapter.lora.alpha", float(alpha))
        adapted = 0
        for key in sorted(state):
            if ".lora_A." not in key:
                continue
            module = key.split("base_model.model.", 1)[-1].split(".lora_A.", 1)[0]
            target = names.get_name(module)
            if target is None:
                raise UnsupportedArchitecture(f"no llama.cpp tensor for {module} in a {arch} model")
            lora_a = state[key].detach().float().cpu().numpy()
            lora_b = state[key.replace(".lora_A.", ".lora_B.")].detach().float().cpu().numpy()
            if layout.permute_qk and module.endswith("q_proj"):
                lora_b = _permute(lora_b, heads)
            elif layout.permute_qk and module.endswith("k_proj"):
                lora_b = _permute(lora_b, kv_heads)
            writer.add_tensor(f"{target}.weight.lora_a", np.ascontiguousarray(lora_a, dtype=np.float32))
            writer.add_tensor(f"{target}.weight.lora_b", np.ascontiguousarray(lora_b, dtype=np.float32))
            adapted += 1
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()
    return adapted
