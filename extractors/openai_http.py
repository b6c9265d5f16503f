"""An OpenAI-compatible chat endpoint (llama.cpp's server, or anything speaking that API)."""

from __future__ import annotations

import time
from typing import Any

import httpx

from extractors.base import BackendError, Completion


class OpenAIHttpBackend:
    """POSTs /v1/chat/completions with a JSON-schema response format, with timeouts."""

    def __init__(self, endpoint: str, model: str = "local", api_key: str | None = None, timeout: float = 120.0) -> None:
        self.endpoint = endpoint.rstrip("/")
        self._model = model
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.client = httpx.Client(base_url=self.endpoint, headers=headers, timeout=httpx.Timeout(timeout, connect=5.0))

    @property
    def model(self) -> str:
        return self._model

    def complete(self, messages: list[dict[str, str]], schema: dict[str, Any] | None, max_tokens: int) -> Completion:
        body: dict[str, Any] = {
            "model": self._model,
            "messages": messages,
            "max_tokens": max_tokens,
            "temperature": 0.0,
        }
        if schema is not None:
            # llama.cpp's server and llama-cpp-python's read the schema here; OpenAI reads json_schema.
            body["response_format"] = {
                "type": "json_object",
                "schema": schema,
                "json_schema": {"name": "skill", "schema": schema, "strict": True},
            }
        started = time.perf_counter()
        try:
            response = self.client.post("/v1/chat/completions", json=body)
        except httpx.HTTPError as exc:
            raise BackendError(f"{self.endpoint}: {type(exc).__name__}: {exc}") from None
        if response.status_code >= 400:
            raise BackendError(f"{self.endpoint}: HTTP {response.status_code}: {response.text[:200]}")
        try:
            data = response.json()
            choice = data["choices"][0]
            text = choice["message"]["content"] or ""
            tokens = int(data.get("usage", {}).get("completion_tokens", 0))
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            raise BackendError(f"{self.endpoint}: unexpected answer: {exc}") from None
        return Completion(text, tokens, time.perf_counter() - started, choice.get("finish_reason") != "length")

    def close(self) -> None:
        self.client.close()
