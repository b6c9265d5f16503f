"""The systemd units: their exposure scores, and the unit as scripts/install-service installs it.

The drop-in is checked with a parser everywhere (what `systemd-analyze verify` would refuse: sections, absolute
paths, an executable ExecStart=, environment names, addresses, stray specifiers); `systemd-analyze` itself,
where it is installed, rates the units and verifies them as the service manager loads them.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import shlex
import shutil
import stat
import subprocess
from pathlib import Path
from urllib.parse import unquote

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


def sections(text: str) -> dict[str, dict[str, list[str]]]:
    """Every assignment of a unit file or drop-in, in order, by section and key (systemd's syntax)."""
    found: dict[str, dict[str, list[str]]] = {}
    section: dict[str, list[str]] | None = None
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            section = found.setdefault(line[1:-1], {})
            continue
        key, equals, value = line.partition("=")
        assert equals and section is not None, f"line {number} is neither a section nor an assignment: {line}"
        assert not line.endswith("\\"), f"line {number} continues on the next one: {line}"
        section.setdefault(key.strip(), []).append(value.strip())
    return found


def settings(path: Path) -> dict[str, list[str]]:
    """Every assignment of a unit file or drop-in, in order, by key (all sections)."""
    found: dict[str, list[str]] = {}
    for section in sections(path.read_text()).values():
        for key, values in section.items():
            found.setdefault(key, []).extend(values)
    return found


def words(values: list[str]) -> list[str]:
    """The paths or addresses of list settings such as BindReadOnlyPaths=, quotes removed."""
    return [word.replace("\\:", ":") for value in values for word in shlex.split(value, posix=True)]


ENVIRONMENT_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def check_dropin(text: str) -> None:
    """What `systemd-analyze verify` would refuse in an installed drop-in, checked without it."""
    found = sections(text)
    assert set(found) == {"Unit", "Service"}, set(found)
    assert set(found["Unit"]) == {"Documentation"}
    assert set(found["Service"]) <= {"ExecStart", "Environment", "BindPaths", "BindReadOnlyPaths", "IPAddressAllow"}
    for values in [*found["Unit"].values(), *found["Service"].values()]:
        for value in values:  # a lone % starts a specifier systemd would expand; %% is a literal one
            assert "%" not in value.replace("%%", ""), value
    (readme,) = found["Unit"]["Documentation"]
    assert readme.startswith("file:///") and Path(unquote(readme.replace("%%", "%"))[7:]) == ROOT / "README.md"
    reset, command = found["Service"]["ExecStart"]  # the unit's ExecStart= is reset, then replaced
    executable = shlex.split(command.replace("$$", "$"))[0]
    assert reset == "" and Path(executable).is_absolute() and os.access(executable, os.X_OK), command
    for assignment in words(found["Service"]["Environment"]):
        name, equals, _ = assignment.partition("=")
        assert equals and ENVIRONMENT_NAME.fullmatch(name), assignment
    for key in ("BindPaths", "BindReadOnlyPaths"):
        reset, *lists = found["Service"][key]
        assert reset == "" and len(lists) == 1, found["Service"][key]
        for path in words(lists):
            assert Path(path.removeprefix("-")).is_absolute(), f"{key}: {path}"
    for address in words(found["Service"].get("IPAddressAllow", [])):
        assert address == "any" or ipaddress.ip_address(address), address


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


def install(tmp_path: Path, manage_telemetry: bool) -> tuple[Path, list[Path], dict[str, str]]:
    """`scripts/install-service --no-enable` on a test configuration: the drop-in, the telemetry paths, the env."""
    assert EXECUTABLE.is_file(), "the checkout needs its .venv (scripts/bootstrap)"
    telemetry = write_config(tmp_path, f"[retention]\nmanage_telemetry = {str(manage_telemetry).lower()}\n")
    env = install_env(tmp_path)
    result = run([str(INSTALL), "--no-enable"], env)
    assert result.returncode == 0, result.stderr
    print(result.stderr)
    return tmp_path / "xdg-config" / "systemd" / "user" / "skilld.service.d" / "10-install.conf", telemetry, env


@pytest.mark.parametrize("manage_telemetry", [False, True])
def test_installed_unit_names_the_configured_paths_and_hosts(manage_telemetry: bool, tmp_path: Path) -> None:
    dropin, telemetry, env = install(tmp_path, manage_telemetry)
    unit_dir = dropin.parent.parent
    assert (unit_dir / "skilld.service").read_bytes() == (ROOT / "systemd" / "skilld.service").read_bytes()
    check_dropin(dropin.read_text())
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

    again = run([str(INSTALL), "--no-enable"], env)
    assert again.returncode == 0, again.stderr
    assert again.stderr.count("unchanged:") == 2, again.stderr


@pytest.mark.parametrize("manage_telemetry", [False, True])
def test_installed_unit_verifies_with_its_dropin(manage_telemetry: bool, analyze: str, tmp_path: Path) -> None:
    dropin, _, _ = install(tmp_path, manage_telemetry)
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


def test_the_dropin_checks_refuse_what_systemd_would() -> None:
    good = (
        f"[Unit]\nDocumentation=file://{ROOT / 'README.md'}\n[Service]\nExecStart=\nExecStart={EXECUTABLE} run\n"
        "Environment=SKILLD_HOME=/srv/skilld\nBindPaths=\nBindPaths=/srv/skilld\nBindReadOnlyPaths=\n"
        'BindReadOnlyPaths=-"/srv/telemetry a"\nIPAddressAllow=192.0.2.10\n'
    )
    check_dropin(good)
    for bad, replacement in (
        (f"ExecStart={EXECUTABLE} run", "ExecStart=/nonexistent/skilld run"),
        ("BindPaths=/srv/skilld", "BindPaths=srv/skilld"),
        ("SKILLD_HOME=/srv/skilld", "SKILLD_HOME=/srv/100%skilld"),
        ("IPAddressAllow=192.0.2.10", "IPAddressAllow=qdrant.example"),
        ("[Service]", "[Servcie]"),
    ):
        with pytest.raises((AssertionError, ValueError)):
            check_dropin(good.replace(bad, replacement))


def print_system_unit(tmp_path: Path) -> tuple[str, str]:
    """`scripts/install-service --system USER --print` on a test configuration: the user, and what it printed."""
    write_config(tmp_path, '[api]\nhost = "0.0.0.0"\n')
    user = run(["id", "-un"]).stdout.strip()
    result = run([str(INSTALL), "--system", user, "--print"], install_env(tmp_path))
    assert result.returncode == 0, result.stderr
    return user, result.stdout


def test_print_writes_nothing_and_shows_the_system_unit_with_its_dropin(tmp_path: Path) -> None:
    user, printed = print_system_unit(tmp_path)
    assert not (tmp_path / "state").exists()
    assert not (tmp_path / "xdg-config").exists()
    marker = f"# /etc/systemd/system/skilld@{user}.service.d/10-install.conf\n"
    assert printed.startswith("# /etc/systemd/system/skilld@.service\n")
    assert (ROOT / "systemd" / "skilld@.service").read_text() in printed
    dropin = printed.split(marker, 1)[1]
    check_dropin(dropin)
    found = sections(dropin)["Service"]
    assert found["ExecStart"] == ["", f"{EXECUTABLE} run"]
    assert words(found["IPAddressAllow"]) == [QDRANT, LLM, "any"]  # api.host 0.0.0.0 takes any address


def test_the_printed_system_unit_verifies_with_its_dropin(analyze: str, tmp_path: Path) -> None:
    user, printed = print_system_unit(tmp_path)
    units = tmp_path / "system"
    (units / f"skilld@{user}.service.d").mkdir(parents=True)
    shutil.copy(ROOT / "systemd" / "skilld@.service", units)
    marker = f"# /etc/systemd/system/skilld@{user}.service.d/10-install.conf\n"
    (units / f"skilld@{user}.service.d" / "10-install.conf").write_text(printed.split(marker, 1)[1])

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
