"""Deploying an adapter to a llama.cpp server: its LoRA endpoint where it has one, else instructions."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx


def deploy_to_server(endpoint: str, adapter: Path | None, timeout: float = 10.0) -> dict[str, Any]:
    """Select an adapter on llama-server via `/lora-adapters` (adapters it was started with `--lora`)."""
    base = endpoint.rstrip("/")
    target = str(adapter) if adapter else None
    try:
        listed = httpx.get(f"{base}/lora-adapters", timeout=timeout)
        if listed.status_code == 200:
            adapters = listed.json()
            if target is None or any(a.get("path") == target for a in adapters):
                scales = [{"id": a["id"], "scale": 1.0 if a.get("path") == target else 0.0} for a in adapters]
                applied = httpx.post(f"{base}/lora-adapters", json=scales, timeout=timeout)
                if applied.status_code == 200:
                    return {"mode": "server", "adapter": target, "switched": True}
    except (httpx.HTTPError, ValueError, KeyError, TypeError):
        pass
    action = f"restart it with `--lora {target}`" if target else "restart it without --lora"
    return {
        "mode": "server",
        "adapter": target,
        "switched": False,
        "action": f"the server at {endpoint} cannot load this adapter at run time: {action}",
    }
