"""The systemd units: their exposure scores, and the unit as scripts/install-service installs it verifies."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from tests.helpers import ROOT

INSTALL = ROOT / "scripts" / "install-service"
EXECUTABLE = ROOT / ".venv" / "bin" / "skilld"
UNITS = ("skilld.service", "skilld@.service")
MAX_EXPOSURE = 2.0
LLM = "192.0.2.10"
QDRANT = "198.51.100.7"


@pytest.fixture
def analyze() -> str:
    path = shutil.which("systemd-analyze")
    if path is None:
        pytest.skip("systemd-analyze is not on PATH")
    return path


def run(command: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=120, cwd=ROOT)


def settings(path: Path) -> dict[str, list[str]]:
    """Every assignment of a unit file or drop-in, in order, by key."""
    found: dict[str, list[str]] = {}
    for line in path.read_text().splitlines():
        if line and not line.startswith(("#", "[")):
            key, _, value = line.partition("=")
            found.setdefault(key, []).append(value)
    return found


def words(values: list[str]) -> list[str]:
    """The paths or addresses of list settings such as BindReadOnlyPaths=, quotes removed."""
    return [word.replace("\\:", ":") for value in values for word in shlex.split(value, posix=True)]


def install_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SKILLD_")}
    env.update(
        HOME=str(tmp_path / "home"),
        XDG_CONFIG_HOME=str(tmp_path / "xdg-config"),
        SKILLD_HOME=str(tmp_path / "state"),
        SKILLD_CONFIG=str(tmp_path / "config.toml"),
    )
    return env


def write_config(tmp_path: Path, extra: str = "") -> list[Path]:
    """A config with two telemetry directories (one missing, one with a space) and remote LLM and Qdrant."""
    telemetry = [tmp_path / "telemetry a", tmp_path / "telemetry-not-yet"]
    telemetry[0].mkdir()
    (tmp_path / "config.toml").write_text(
        f"[telemetry]\npaths = {json.dumps([str(p) for p in telemetry])}\n"
        f'[llm]\nendpoint = "http://{LLM}:8080/v1"\n'
        f'[qdrant]\nurl = "http://{QDRANT}:6333"\n' + extra
    )
    return telemetry


def verify_user_unit(analyze: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """`systemd-analyze --user verify`, as the user manager of tmp_path's home would load the unit."""
    runtime = tmp_path / "runtime"
    runtime.mkdir(mode=0o700, exist_ok=True)
    env = {
        **os.environ,
        "HOME": str(tmp_path / "home"),
        "XDG_CONFIG_HOME": str(tmp_path / "xdg-config"),
        "XDG_RUNTIME_DIR": str(runtime),
    }
    return run([analyze, "--user", "verify", "skilld.service"], env)


@pytest.mark.parametrize("unit", UNITS)
def test_unit_exposure_is_rated_ok(
    unit: str, analyze: str, capsys: pytest.CaptureFixture[str], request: pytest.FixtureRequest
) -> None:
    result = run([analyze, "security", "--offline=yes", f"systemd/{unit}"])
    assert result.returncode == 0, result.stderr
    match = re.search(r"Overall exposure level for (\S+): (\d+\.\d+)", result.stdout)
    assert match, result.stdout
    score = float(match.group(2))
    print(result.stdout)
    with capsys.disabled():
        print(f"\n{request.node.name}: systemd-analyze security rates {unit} at {score} (at most {MAX_EXPOSURE})")
    assert score <= MAX_EXPOSURE, result.stdout


@pytest.mark.parametrize("unit", UNITS)
def test_unit_declares_the_service_contract_and_leaves_out_what_the_ml_stack_needs(unit: str) -> None:
    found = settings(ROOT / "systemd" / unit)
    for key, value in {
        "Type": "notify",
        "NotifyAccess": "main",
        "WatchdogSec": "60",
        "Restart": "on-failure",
        "TimeoutStopSec": "30",
        "ExecReload": "/bin/kill -HUP $MAINPID",
        "UMask": "0077",
        "StandardOutput": "journal",
        "StandardError": "journal",
        "NoNewPrivileges": "yes",
        "ProtectSystem": "strict",
        "PrivateTmp": "yes",
        "PrivateDevices": "yes",
        "CapabilityBoundingSet": "",
        "RestrictAddressFamilies": "AF_UNIX AF_INET AF_INET6",
        "IPAddressDeny": "any",
        "IPAddressAllow": "localhost",
        "ProtectProc": "invisible",
    }.items():
        assert found.get(key) == [value], f"{unit}: {key}={found.get(key)}"
    environment = " ".join(found["Environment"])
    for assignment in ("SKILLD_LOGGING__FORMAT=json", "HF_HUB_OFFLINE=1", "TRANSFORMERS_OFFLINE=1"):
        assert assignment in environment.split(), f"{unit} lacks {assignment}"
    # llama-cpp-python's ctypes callbacks need W+X pages; torch reads /proc/meminfo and /proc/cpuinfo.
    assert "MemoryDenyWriteExecute" not in found
    assert "ProcSubset" not in found
    assert Path(found["ExecReload"][0].split()[0]).is_file()


@pytest.mark.parametrize("manage_telemetry", [False, True])
def test_installed_unit_names_the_configured_paths_and_hosts_and_verifies(
    manage_telemetry: bool, analyze: str, tmp_path: Path
) -> None:
    assert EXECUTABLE.is_file(), "the checkout needs its .venv (scripts/bootstrap)"
    telemetry = write_config(tmp_path, f"[retention]\nmanage_telemetry = {str(manage_telemetry).lower()}\n")
    env = install_env(tmp_path)
    result = run([str(INSTALL), "--no-enable"], env)
    assert result.returncode == 0, result.stderr
    print(result.stderr)

    unit_dir = tmp_path / "xdg-config" / "systemd" / "user"
    dropin = unit_dir / "skilld.service.d" / "10-install.conf"
    assert (unit_dir / "skilld.service").read_bytes() == (ROOT / "systemd" / "skilld.service").read_bytes()
    found = settings(dropin)
    assert found["ExecStart"] == ["", f"{EXECUTABLE} run"]
    assert f"SKILLD_HOME={tmp_path / 'state'}" in words(found["Environment"])
    assert f"SKILLD_CONFIG={tmp_path / 'config.toml'}" in words(found["Environment"])
    writable, readable = words(found["BindPaths"]), words(found["BindReadOnlyPaths"])
    assert writable[0] == str(tmp_path / "state")
    for path in telemetry:
        assert f"-{path}" in (writable if manage_telemetry else readable)
        assert f"-{path}" not in (readable if manage_telemetry else writable)
    assert f"-{tmp_path}" in readable  # the config directory
    assert set(words(found["IPAddressAllow"])) == {LLM, QDRANT}
    assert stat.S_IMODE((tmp_path / "state").stat().st_mode) == 0o700

    verified = verify_user_unit(analyze, tmp_path)
    output = verified.stdout + verified.stderr
    print(f"systemd-analyze --user verify skilld.service: exit {verified.returncode}\n{output}")
    assert verified.returncode == 0, output
    assert "skilld" not in output, output

    # The same verification fails on a drop-in that names a missing executable: it reads the drop-ins.
    probe = dropin.with_name("99-probe.conf")
    probe.write_text("[Service]\nExecStart=\nExecStart=/nonexistent/skilld run\n")
    probed = verify_user_unit(analyze, tmp_path)
    assert probed.returncode != 0 and "/nonexistent/skilld" in probed.stderr, probed.stderr
    probe.unlink()

    again = run([str(INSTALL), "--no-enable"], env)
    assert again.returncode == 0, again.stderr
    assert again.stderr.count("unchanged:") == 2, again.stderr


def test_print_writes_nothing_and_the_system_unit_verifies_with_its_dropin(analyze: str, tmp_path: Path) -> None:
    write_config(tmp_path, '[api]\nhost = "0.0.0.0"\n')
    user = run(["id", "-un"]).stdout.strip()
    result = run([str(INSTALL), "--system", user, "--print"], install_env(tmp_path))
    assert result.returncode == 0, result.stderr
    assert not (tmp_path / "state").exists()
    assert not (tmp_path / "xdg-config").exists()
    marker = f"# /etc/systemd/system/skilld@{user}.service.d/10-install.conf\n"
    assert result.stdout.startswith("# /etc/systemd/system/skilld@.service\n")
    assert (ROOT / "systemd" / "skilld@.service").read_text() in result.stdout
    dropin_text = result.stdout.split(marker, 1)[1]

    units = tmp_path / "system"
    (units / f"skilld@{user}.service.d").mkdir(parents=True)
    shutil.copy(ROOT / "systemd" / "skilld@.service", units)
    dropin = units / f"skilld@{user}.service.d" / "10-install.conf"
    dropin.write_text(dropin_text)
    found = settings(dropin)
    assert found["ExecStart"] == ["", f"{EXECUTABLE} run"]
    assert words(found["IPAddressAllow"]) == [QDRANT, LLM, "any"]  # api.host 0.0.0.0 takes any address

    # SYSTEMD_UNIT_PATH puts the directory first in the search path; the trailing ':' keeps the defaults.
    verified = run([analyze, "verify", f"skilld@{user}.service"], {**os.environ, "SYSTEMD_UNIT_PATH": f"{units}:"})
    output = verified.stdout + verified.stderr
    print(f"systemd-analyze verify skilld@{user}.service: exit {verified.returncode}\n{output}")
    assert verified.returncode == 0, output
    assert "skilld" not in output, output


def test_invalid_configuration_exits_2_naming_the_key_and_installs_nothing(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text("[llm]\ntimeout = -1\n")
    result = run([str(INSTALL), "--no-enable"], install_env(tmp_path))
    assert result.returncode == 2, result.stderr
    assert "llm.timeout" in result.stderr.strip().splitlines()[-1]
    assert not (tmp_path / "xdg-config").exists()
    assert not (tmp_path / "state").exists()
