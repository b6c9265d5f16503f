"""Grammar-constrained greedy decoding that checks the model's choice first (llama.cpp's own trick).

llama-cpp-python's built-in grammar sampling checks the grammar against the whole vocabulary at every
token (~50k candidates), which halves decode speed on small models. llama.cpp's sampler instead checks
the token the model would pick anyway and falls back to the full vocabulary only when the grammar
rejects it. This does the same through the low-level sampler API: the greedy token first, then the next
few best tokens one by one, and only then the whole vocabulary.
"""

from __future__ import annotations

import ctypes
import threading
import time
from dataclasses import dataclass
from typing import Any

import llama_cpp
import numpy as np

from extractors.base import Cancelled

# Candidates tried one by one before the whole vocabulary is handed to the grammar.
TOP_CANDIDATES = 8
_TOKEN_DATA = np.dtype([("id", "<i4"), ("logit", "<f4"), ("p", "<f4")])


@dataclass
class Decoded:
    """Tokens a decode produced, with how long it took and how often the full grammar check ran."""

    tokens: list[int]
    seconds: float
    full_checks: int
    finished: bool

    @property
    def tokens_per_second(self) -> float:
        return len(self.tokens) / self.seconds if self.seconds > 0 else 0.0


class GrammarDecoder:
    """Greedy decoding with a repetition penalty, optionally constrained to a GBNF grammar."""

    def __init__(self, llm: Any, repeat_penalty: float = 1.2, penalty_window: int = 64) -> None:
        self.llm = llm
        self.vocab = llama_cpp.llama_model_get_vocab(llm._model.model)
        self.n_vocab = int(llama_cpp.llama_vocab_n_tokens(self.vocab))
        self.repeat_penalty = repeat_penalty
        self.penalty_window = penalty_window
        self._one = (llama_cpp.llama_token_data * 1)()
        self._one_array = llama_cpp.llama_token_data_array(data=self._one, size=1, selected=-1, sorted=False)
        self._all = (llama_cpp.llama_token_data * self.n_vocab)()
        buffer = (ctypes.c_byte * (_TOKEN_DATA.itemsize * self.n_vocab)).from_address(ctypes.addressof(self._all))
        self._all_np: Any = np.frombuffer(memoryview(buffer), dtype=_TOKEN_DATA)
        self._ids = np.arange(self.n_vocab, dtype=np.int32)
        self.cancel: threading.Event | None = None  # when set, decode stops between two tokens

    def _logits(self, recent: list[int]) -> np.ndarray[Any, np.dtype[np.float32]]:
        pointer = llama_cpp.llama_get_logits_ith(self.llm._ctx.ctx, -1)
        logits: np.ndarray[Any, np.dtype[np.float32]] = np.ctypeslib.as_array(pointer, shape=(self.n_vocab,)).copy()
        if recent and self.repeat_penalty != 1.0:
            window = np.unique(np.asarray(recent[-self.penalty_window :], dtype=np.int32))
            values = logits[window]
            logits[window] = np.where(values > 0, values / self.repeat_penalty, values * self.repeat_penalty)
        return logits

    def _allowed(self, grammar: Any, token: int, logit: float) -> bool:
        entry: Any = self._one[0]
        entry.id, entry.logit, entry.p = token, logit, 0.0
        self._one_array.size, self._one_array.selected = 1, -1
        llama_cpp.llama_sampler_apply(grammar, ctypes.byref(self._one_array))
        return bool(np.isfinite(entry.logit))

    def _best_allowed(self, grammar: Any, logits: np.ndarray[Any, np.dtype[np.float32]]) -> tuple[int, bool]:
        """The best token the grammar allows, and whether the whole vocabulary had to be checked."""
        top = np.argpartition(-logits, TOP_CANDIDATES)[:TOP_CANDIDATES]
        for token in top[np.argsort(-logits[top])]:
            if self._allowed(grammar, int(token), float(logits[token])):
                return int(token), False
        self._all_np["id"], self._all_np["logit"], self._all_np["p"] = self._ids, logits, 0.0
        array = llama_cpp.llama_token_data_array(data=self._all, size=self.n_vocab, selected=-1, sorted=False)
        llama_cpp.llama_sampler_apply(grammar, ctypes.byref(array))
        return int(np.argmax(self._all_np["logit"])), True

    def decode(self, prompt: list[int], max_tokens: int, grammar_text: str | None) -> Decoded:
        """Evaluate the prompt, then decode up to max_tokens tokens (under the grammar, if one is given)."""
        llm = self.llm
        llm.reset()
        llm.eval(prompt)
        grammar = (
            llama_cpp.llama_sampler_init_grammar(self.vocab, grammar_text.encode(), b"root") if grammar_text else None
        )
        out: list[int] = []
        full_checks = 0
        finished = False
        started = time.perf_counter()
        try:
            for _ in range(max_tokens):
                if self.cancel is not None and self.cancel.is_set():
                    raise Cancelled("decoding stopped on request")
                if llm.n_tokens >= llm.n_ctx():
                    break
                logits = self._logits(out)
                token = int(np.argmax(logits))
                if grammar is not None and not self._allowed(grammar, token, float(logits[token])):
                    token, full = self._best_allowed(grammar, logits)
                    full_checks += int(full)
                if llama_cpp.llama_vocab_is_eog(self.vocab, token):
                    finished = True
                    break
                if grammar is not None:
                    llama_cpp.llama_sampler_accept(grammar, token)
                out.append(token)
                llm.eval([token])
        finally:
            if grammar is not None:
                llama_cpp.llama_sampler_free(grammar)
        return Decoded(out, time.perf_counter() - started, full_checks, finished)
