"""No one else on the machine reads your skills: a second real local user against a running daemon."""

from __future__ import annotations

import json
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.helpers import Daemon, skilld_json, wait_for, write_lines

pytestmark = pytest.mark.slow

NEEDS_ROOT = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("useradd") is None, reason="creating a second local user needs root and useradd"
)

OTHER = "skilld-other"

# Run as the other user with the system's Python and its standard library only (the checkout's virtual
# environment is not theirs to read): every route over TCP, then the unix socket.
PROBE = textwrap.dedent("""
    import json, socket, sys, urllib.error, urllib.request
    url, sock_path = sys.argv[1], sys.argv[2]
    routes = [("GET", "/health"), ("GET", "/ready"), ("GET", "/metrics"), ("GET", "/v1/status"),
              ("GET", "/v1/search?q=git"), ("GET", "/report"), ("POST", "/v1/commands/interactions"),
              ("POST", "/v1/commands/skills.list"), ("POST", "/mcp")]
    seen = {}
    for method, path in routes:
        data = b"{}" if method == "POST" else None
        request = urllib.request.Request(url + path, data=data, method=method,
                                         headers={"Content-Type": "application/json", "Accept": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=10) as answer:
                seen[path] = [answer.status, answer.read(300).decode(errors="replace")]
        except urllib.error.HTTPError as exc:
            seen[path] = [exc.code, exc.read(300).decode(errors="replace")]
    s = socket.socket(socket.AF_UNIX)
    try:
        s.connect(sock_path)
        s.sendall(b"GET /health HTTP/1.0\\r\\nHost: localhost\\r\\n\\r\\n")
        seen["socket"] = [s.recv(4096).decode(errors="replace"), None]
    except OSError as exc:
        seen["socket"] = ["refused", exc.strerror]
    print(json.dumps(seen))
""")


@pytest.fixture(scope="module")
def other() -> Iterator[pwd.struct_passwd]:
    """A second local user, created for these tests and removed after."""
    created = False
    try:
        pwd.getpwnam(OTHER)
    except KeyError:
        subprocess.run(["useradd", "--no-create-home", "--shell", "/usr/sbin/nologin", OTHER], check=True)
        created = True
    try:
        yield pwd.getpwnam(OTHER)
    finally:
        if created:
            subprocess.run(["userdel", OTHER], check=False)


def probe_as(user: pwd.struct_passwd, url: str, socket_path: Path) -> dict[str, list[object]]:
    python = shutil.which("python3", path="/usr/bin:/bin") or sys.executable
    command = ["setpriv", f"--reuid={user.pw_uid}", f"--regid={user.pw_gid}", "--clear-groups", python, "-c", PROBE]
    done = subprocess.run([*command, url, str(socket_path)], capture_output=True, text=True, timeout=120, cwd="/")
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout))


@pytest.fixture
def reachable_home() -> Iterator[Path]:
    """A home whose parents the other user may traverse (pytest's own temporary folders are 0700)."""
    folder = Path(tempfile.mkdtemp(prefix="skilld-other-user-", dir="/tmp"))
    folder.chmod(0o711)  # traversable, not listable; the daemon's log is written here too
    try:
        yield folder / "home"
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@NEEDS_ROOT
def test_another_user_reads_nothing_over_tcp_or_the_socket_and_the_owner_everything(
    other: pwd.struct_passwd, reachable_home: Path, telemetry: Path
) -> None:
    home = reachable_home
    home.mkdir(mode=0o700)
    record = {"event_type": "completion", "extension": "ai", "success": True, "user_feedback": 1}
    record.update(prompt="How do I undo my last git commit?", completion="Run `git reset --soft HEAD~1`.")
    write_lines(telemetry / "vscode-events.jsonl", [record])
    with Daemon(home, telemetry) as daemon:
        wait_for(lambda: daemon.status()["scored"] >= 1, 120, "a scored interaction")
        url = daemon.status()["api"]["url"]
        socket_path = home / "skilld.sock"
        seen = probe_as(other, url, socket_path)
        assert seen["/health"][0] == 200 and seen["/ready"][0] == 200 and seen["/metrics"][0] == 200
        for path in ("/v1/status", "/v1/search?q=git", "/report", "/v1/commands/interactions", "/mcp"):
            status, body = seen[path]
            assert status == 401, (path, seen[path])
            assert json.loads(str(body)) == {"error": "a bearer token is required (see SKILLD_HOME/api.token)"}
            assert "git" not in str(body)
        assert seen["socket"] == ["refused", "Permission denied"]  # a 0700 home: not even the path

        # Modes loosened by mistake: the daemon still asks the kernel who connects, and refuses them.
        home.chmod(0o711)
        socket_path.chmod(0o666)
        try:
            refused = probe_as(other, url, socket_path)["socket"][0]
        finally:
            home.chmod(0o700)
            socket_path.chmod(0o600)
        head, _, body = str(refused).partition("\r\n\r\n")
        assert head.startswith("HTTP/1.0 403") and json.loads(body) == {
            "error": "this skilld daemon serves its own user only"
        }

        # The owner: the CLI over the socket, and the API with the token from the home.
        assert skilld_json(home, "status", env=daemon.env)["scored"] >= 1
        assert skilld_json(home, "context", "undo my last git commit", env=daemon.env)["markdown"] is not None
        token = {"Authorization": f"Bearer {(home / 'api.token').read_text().strip()}"}
        for path in ("/v1/status", "/v1/search?q=git", "/health", "/metrics"):
            assert httpx.get(url + path, headers=token, timeout=10).status_code == 200, path
    assert "refused a connection from another user" in daemon.logs()


def test_metrics_need_the_token_when_they_are_not_public(home: Path, telemetry: Path) -> None:
    telemetry.mkdir(exist_ok=True)
    with Daemon(home, telemetry, SKILLD_API__METRICS_PUBLIC="false") as daemon:
        url = daemon.status()["api"]["url"]
        assert httpx.get(url + "/metrics", timeout=10).status_code == 401
        assert httpx.get(url + "/health", timeout=10).status_code == 200
        token = {"Authorization": f"Bearer {(home / 'api.token').read_text().strip()}"}
        assert httpx.get(url + "/metrics", headers=token, timeout=10).status_code == 200
