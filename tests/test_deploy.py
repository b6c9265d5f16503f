"""Deploying an adapter to a llama.cpp server (`llm.endpoint`): switched through `/lora-adapters`, or told what to do.

llama.cpp's `llama-server` lists the adapters it was started with (`--lora`) at `GET /lora-adapters`
(`[{"id", "path", "scale"}]`) and sets their scales at `POST /lora-adapters` (`[{"id", "scale"}]`); it cannot
load a new file at run time. llama-cpp-python's server (`python -m llama_cpp.server`, the real peer these tests
can start) has no such endpoint in the pinned version: it takes one `--lora_path` at start and nothing at run
time. So the real server checks the path every server without the endpoint takes (the restart instruction,
and the server left serving); the switch itself is checked on a stand-in that speaks llama-server's protocol.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from extractors.deploy import deploy_to_server
from tests.test_models import llama_cpp_server


@pytest.mark.slow
def test_a_llama_cpp_python_server_without_the_lora_endpoint_gets_the_restart_instruction(tmp_path: Path) -> None:
    adapter = tmp_path / "models" / "v2" / "skilld-v2.lora.gguf"
    with llama_cpp_server() as url:
        assert httpx.get(f"{url}/lora-adapters", timeout=10).status_code == 404
        promoted = deploy_to_server(url, adapter)
        rolled_back = deploy_to_server(url, None)
        assert httpx.get(f"{url}/v1/models", timeout=10).status_code == 200  # still serving the model it had
    assert promoted == {
        "mode": "server",
        "adapter": str(adapter),
        "switched": False,
        "action": f"the server at {url} cannot load this adapter at run time: restart it with `--lora {adapter}`",
    }
    assert rolled_back == {
        "mode": "server",
        "adapter": None,
        "switched": False,
        "action": f"the server at {url} cannot load this adapter at run time: restart it without --lora",
    }


class LoraAdapters(BaseHTTPRequestHandler):
    """llama-server's `/lora-adapters`: the adapters it was started with, and the scales posted to it."""

    adapters: list[dict[str, Any]]
    posted: list[list[dict[str, Any]]]

    def do_GET(self) -> None:
        self._answer(200 if self.path == "/lora-adapters" else 404, self.adapters)

    def do_POST(self) -> None:
        if self.path != "/lora-adapters":
            self._answer(404, {})
            return
        scales = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.posted.append(scales)
        for entry in scales:
            self.adapters[entry["id"]]["scale"] = entry["scale"]
        self._answer(200, {"success": True})

    def _answer(self, status: int, body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextmanager
def llama_server_stand_in(started_with: list[Path]) -> Iterator[tuple[str, type[LoraAdapters]]]:
    """A server started with `--lora` for each path (the first one active), on a free port."""
    adapters = [{"id": i, "path": str(p), "scale": 1.0 if i == 0 else 0.0} for i, p in enumerate(started_with)]
    handler = type("Handler", (LoraAdapters,), {"adapters": adapters, "posted": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", handler
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_an_adapter_the_server_was_started_with_is_switched_on_and_the_others_off(tmp_path: Path) -> None:
    v1, v2 = tmp_path / "v1" / "skilld-v1.lora.gguf", tmp_path / "v2" / "skilld-v2.lora.gguf"
    with llama_server_stand_in([v1, v2]) as (url, server):
        assert deploy_to_server(url, v2) == {"mode": "server", "adapter": str(v2), "switched": True}
        assert server.posted[-1] == [{"id": 0, "scale": 0.0}, {"id": 1, "scale": 1.0}]
        assert deploy_to_server(url, None) == {"mode": "server", "adapter": None, "switched": True}  # the base model
        assert server.posted[-1] == [{"id": 0, "scale": 0.0}, {"id": 1, "scale": 0.0}]


def test_an_adapter_the_server_was_not_started_with_is_not_posted_and_names_the_restart(tmp_path: Path) -> None:
    v1, v3 = tmp_path / "v1" / "skilld-v1.lora.gguf", tmp_path / "v3" / "skilld-v3.lora.gguf"
    with llama_server_stand_in([v1]) as (url, server):
        result = deploy_to_server(url, v3)
    assert server.posted == [] and result["switched"] is False
    assert result["action"].endswith(f"restart it with `--lora {v3}`")


def test_an_unreachable_server_gets_the_restart_instruction(tmp_path: Path) -> None:
    from tests.test_models import _free_port

    url = f"http://127.0.0.1:{_free_port()}"
    result = deploy_to_server(url, tmp_path / "skilld-v1.lora.gguf", timeout=2)
    assert result["switched"] is False and result["action"].startswith(f"the server at {url} cannot load")
