"""Configuration: TOML plus SKILLD_* variables, defaults that work, one clear line for a bad value."""

from __future__ import annotations

from pathlib import Path

import pytest

from daemon.config import ConfigError, load_settings
from tests.helpers import cli_env, skilld


def test_defaults_put_state_under_the_xdg_data_home(tmp_path: Path) -> None:
    settings = load_settings()
    assert settings.home == tmp_path / "xdg-data" / "skilld"
    assert settings.telemetry_paths == [settings.home / "telemetry"]


def test_toml_file_is_read_and_environment_overrides_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "skilld.toml"
    config.write_text('[telemetry]\npaths = ["/var/log/ai"]\nbatch_lines = 10\n[logging]\nlevel = "debug"\n')
    monkeypatch.setenv("SKILLD_TELEMETRY__BATCH_LINES", "20")
    settings = load_settings(config)
    assert settings.telemetry.paths == [Path("/var/log/ai")]
    assert settings.telemetry.batch_lines == 20
    assert settings.logging.level == "debug"


def test_lists_in_the_environment_are_json(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SKILLD_TELEMETRY__PATHS", '["/a", "/b"]')
    assert load_settings().telemetry.paths == [Path("/a"), Path("/b")]


def test_the_default_config_file_is_read_from_xdg_config_home(tmp_path: Path) -> None:
    (tmp_path / "xdg-config" / "skilld").mkdir(parents=True)
    (tmp_path / "xdg-config" / "skilld" / "config.toml").write_text("[telemetry]\npoll = true\n")
    assert load_settings().telemetry.poll is True


@pytest.mark.parametrize(
    ("toml", "expected"),
    [
        ('[telemetry]\npoll_interval = "soon"\n', "config: telemetry.poll_interval: Input should be a valid number"),
        ('[logging]\nlevel = "loud"\n', "config: logging.level: Input should be 'debug', 'info', 'warning' or 'error'"),
        ("[telemetry]\nbatch_lines = 0\n", "config: telemetry.batch_lines: Input should be greater than or equal to 1"),
        ("[telemetry]\nbatch_size = 5\n", "config: telemetry.batch_size: unknown key"),
        ("[telemetry\n", "config: "),
    ],
)
def test_a_bad_value_fails_with_one_line_naming_the_key(tmp_path: Path, toml: str, expected: str) -> None:
    config = tmp_path / "bad.toml"
    config.write_text(toml)
    with pytest.raises(ConfigError) as error:
        load_settings(config)
    message = str(error.value)
    assert message.startswith(expected)
    assert "\n" not in message


def test_a_bad_environment_value_names_the_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SKILLD_TELEMETRY__POLL", "perhaps")
    with pytest.raises(ConfigError, match=r"^config: telemetry.poll: Input should be a valid boolean"):
        load_settings()


def test_the_cli_reports_a_bad_config_in_one_line_and_exits_2(tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text('[logging]\nformat = "xml"\n')
    home = tmp_path / "home"
    result = skilld(home, "--config", str(config), "status", check=False)
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.strip().splitlines() == [
        "skilld: config: logging.format: Input should be 'text' or 'json' (got 'xml')"
    ]


def test_skilld_config_variable_names_the_file(tmp_path: Path) -> None:
    home = tmp_path / "home"
    result = skilld(home, "status", env=cli_env(home, SKILLD_CONFIG=str(tmp_path / "missing.toml")), check=False)
    assert result.returncode == 2
    assert "missing.toml does not exist" in result.stderr
