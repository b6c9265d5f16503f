"""Choosing the model backend from configuration: an HTTP endpoint, or a GGUF in this process."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from extractors.base import LLMBackend


class BackendSettings(Protocol):
    """What choosing a backend reads from the configuration (the daemon's `llm` section has it all)."""

    endpoint: str | None
    model: str
    api_key: str | None
    timeout: float
    model_path: Path | None
    context: int
    threads: int
    repeat_penalty: float


def open_backend(llm: BackendSettings, lora_path: Path | None = None) -> LLMBackend:
    """`llm.endpoint` when set (OpenAI-compatible), else llama.cpp here on `llm.model_path` or the bundled model."""
    if llm.endpoint:
        from extractors.openai_http import OpenAIHttpBackend

        return OpenAIHttpBackend(llm.endpoint, llm.model, llm.api_key, llm.timeout)
    from extractors.base import BackendError
    from extractors.llama_cpp import LlamaCppBackend, bundled_model_path

    path = llm.model_path or bundled_model_path()
    try:
        return LlamaCppBackend(
            path, n_ctx=llm.context, threads=llm.threads or None, repeat_penalty=llm.repeat_penalty, lora_path=lora_path
        )
    except (ValueError, OSError) as exc:  # a missing, truncated or foreign file: the item retries, then parks
        raise BackendError(f"cannot load {path}: {str(exc).splitlines()[0] if str(exc) else exc}") from exc
