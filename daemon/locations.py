"""Where skilld's state and configuration live, found with the standard library alone.

`daemon/config.py` builds its settings on these; the editor hooks (`daemon/hook.py`) use them to find the
daemon's socket without loading the settings model, which would cost them most of their time budget.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path


def xdg_dir(env: str, fallback: str) -> Path:
    """An XDG base directory, honouring the environment variable when it is set and absolute."""
    value = os.environ.get(env, "")
    return Path(value) if value.startswith("/") else Path.home() / fallback


def default_home() -> Path:
    """Where skilld keeps its state when neither --home nor SKILLD_HOME says otherwise."""
    return xdg_dir("XDG_DATA_HOME", ".local/share") / "skilld"


def default_config_file() -> Path:
    """The TOML file read when neither --config nor SKILLD_CONFIG names one."""
    return xdg_dir("XDG_CONFIG_HOME", ".config") / "skilld" / "config.toml"


def find_home(home: str | None = None, config: str | None = None) -> Path:
    """The home as the settings resolve it (--home, SKILLD_HOME, the TOML file's `home`, the default),
    without validating anything else; OSError or ValueError for an unreadable or malformed file."""
    chosen = home or os.environ.get("SKILLD_HOME")
    if not chosen:
        path = Path(config or os.environ.get("SKILLD_CONFIG") or default_config_file())
        if path.is_file():
            with open(path, "rb") as handle:
                value = tomllib.load(handle).get("home")
            chosen = str(value) if value else None
    return Path(chosen).expanduser().absolute() if chosen else default_home()
