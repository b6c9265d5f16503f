"""Fixtures: a private skilld home per test, settings on it, and the composed application."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from daemon.app import Skilld
from daemon.config import Settings, load_settings


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(__import__("os").environ):
        if name.startswith("SKILLD_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg-config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg-data"))


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


@pytest.fixture
def telemetry(tmp_path: Path) -> Path:
    path = tmp_path / "telemetry"
    path.mkdir()
    return path


@pytest.fixture
def settings(home: Path, telemetry: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("SKILLD_TELEMETRY__PATHS", f'["{telemetry}"]')
    return load_settings(home=home)


@pytest.fixture
def app(settings: Settings) -> Iterator[Skilld]:
    application = Skilld(settings)
    yield application
    application.close()


@pytest.fixture(scope="session")
def embedder():  # type: ignore[no-untyped-def]
    """The real bundled embedding model, loaded once per test session."""
    from storage.embeddings import Embedder

    return Embedder()


@pytest.fixture(scope="session")
def llama():  # type: ignore[no-untyped-def]
    """The real bundled SmolLM2 model in llama.cpp, loaded once per test session."""
    from extractors.llama_cpp import LlamaCppBackend, bundled_model_path

    return LlamaCppBackend(bundled_model_path())
