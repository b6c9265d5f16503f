"""The drop-in of the skilld unit for the resolved configuration (what `scripts/install-service` writes).

`python -m daemon.dropin ROOT EXECUTABLE CREATE_HOME` prints it: the executable, the state, telemetry, config
and model paths bound into the sandbox, and the remote Qdrant and LLM hosts the IP firewall lets through.
Exit status 2: the configuration is invalid (one line names the key).
"""

from __future__ import annotations

import ipaddress
import os
import socket
import sys
from pathlib import Path
from typing import NoReturn
from urllib.parse import quote, urlsplit

from daemon.config import ConfigError, load_settings
from daemon.locations import default_config_file

# What the unit's sandbox hides (ProtectHome=tmpfs, PrivateTmp=yes): code there has to be bound in.
HIDDEN = [Path(p) for p in ("/home", "/root", "/run/user", "/tmp", "/var/tmp")]


def fail(message: str) -> NoReturn:
    print(message, file=sys.stderr)
    sys.exit(2)


def word(text: str) -> str:
    """One word of a unit file setting: specifiers escaped, quoted when it holds spaces."""
    text = text.replace("%", "%%").replace("\\", "\\\\").replace('"', '\\"')
    return f'"{text}"' if any(c.isspace() for c in text) or '"' in text else text


def bind(path: Path, optional: bool = False) -> str:
    """One path of BindPaths=/BindReadOnlyPaths= ("-": ignored while missing; ':' would split it)."""
    if '"' in str(path) or "\n" in str(path):
        fail(f"install-service: cannot bind {str(path)!r} into the sandbox: a quote or newline in its name")
    return ("-" if optional else "") + word(str(path)).replace(":", "\\:")


def addresses(key: str, host: str) -> list[str]:
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except OSError as exc:
        fail(f"config: {key}: cannot resolve {host!r} for the service's IP allow list ({exc.strerror or exc})")
    found = {ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos}
    return [str(a) for a in sorted(found, key=lambda a: (a.version, a))]


def is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def nameservers() -> list[str]:
    """The non-loopback DNS servers of /etc/resolv.conf."""
    try:
        words = [line.split() for line in Path("/etc/resolv.conf").read_text().splitlines()]
    except OSError:
        return []
    found = [w[1].split("%")[0] for w in words if len(w) > 1 and w[0] == "nameserver"]
    return [a for a in found if is_address(a) and not ipaddress.ip_address(a).is_loopback]


def dropin(root: Path, executable: str, create_home: bool) -> str:
    """The drop-in's text for this checkout, its executable and the configuration skilld resolves."""
    try:
        settings = load_settings()
    except ConfigError as exc:
        fail(str(exc))

    home = settings.home
    config = Path(os.environ.get("SKILLD_CONFIG") or default_config_file()).absolute()
    readme = "file://" + quote(str(root / "README.md"))
    lines = [
        "# Written by scripts/install-service from skilld's configuration: run it again after changing the home,",
        "# telemetry or model paths, qdrant.url, llm.endpoint or api.host. Put settings of your own in another",
        "# drop-in (20-local.conf, say): this one is rewritten.",
        f"# config: {config if config.is_file() else 'none, the defaults'}",
        "[Unit]",
        f"Documentation={readme.replace('%', '%%')}",
        "",
        "[Service]",
        "ExecStart=",
        f"ExecStart={word(executable).replace('$', '$$')} run",
        f"Environment={word(f'SKILLD_HOME={home}')}",
    ]
    if config.is_file():
        lines.append(f"Environment={word(f'SKILLD_CONFIG={config}')}")

    writable: list[str] = [bind(home)]
    readable: list[str] = []
    telemetry = [p.absolute() for p in settings.telemetry_paths if not p.absolute().is_relative_to(home)]
    (writable if settings.retention.manage_telemetry else readable).extend(bind(p, optional=True) for p in telemetry)
    # The directory rather than the file: editors replace the file, and a reload (SIGHUP) reads it again.
    readable.append(bind(config.parent if config.parent != Path.home() else config, optional=True))
    models = [p for p in (settings.llm.model_path, settings.embedding.model_path) if p is not None]
    readable += [bind(p.expanduser().absolute(), optional=True) for p in models]
    code = dict.fromkeys([root, Path(sys.base_prefix).resolve()])
    readable += [bind(p) for p in code if any(p.is_relative_to(h) for h in HIDDEN)]
    lines += [
        "# The state directory, writable; the telemetry directories, "
        + ("writable (retention.manage_telemetry = true)" if settings.retention.manage_telemetry else "read-only")
        + ";",
        "# the config directory, model files, and the code where ProtectHome=/PrivateTmp= would hide it.",
        "BindPaths=",
        "BindPaths=" + " ".join(writable),
        "BindReadOnlyPaths=",
        "BindReadOnlyPaths=" + " ".join(readable),
    ]

    allowed: list[str] = []
    by_name = False
    for key, url in (("qdrant.url", settings.qdrant.url), ("llm.endpoint", settings.llm.endpoint)):
        host = urlsplit(url).hostname if url else None
        remote = [a for a in addresses(key, host) if not ipaddress.ip_address(a).is_loopback] if host else []
        if remote:
            lines.append(f"# {key}: {host}")  # not the URL, which may hold credentials
            allowed += remote
            by_name = by_name or not is_address(host or "")
    if by_name and nameservers():
        lines.append("# the DNS servers of /etc/resolv.conf, which resolve those names")
        allowed += nameservers()
    if allowed:
        lines.append("IPAddressAllow=" + " ".join(dict.fromkeys(allowed)))
    api = settings.api
    if api.enabled and not all(ipaddress.ip_address(a).is_loopback for a in addresses("api.host", api.host)):
        lines += [
            f"# api.host = {api.host} is not loopback: the API takes connections from any address, so the",
            "# firewall lets any address in (and out).",
            "IPAddressAllow=any",
        ]

    if create_home:
        home.mkdir(mode=0o700, parents=True, exist_ok=True)
    return "\n".join(lines)


def main(argv: list[str]) -> None:
    root, executable, create_home = Path(argv[0]), argv[1], argv[2] == "1"
    print(dropin(root, executable, create_home))


if __name__ == "__main__":
    main(sys.argv[1:])
