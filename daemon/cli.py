"""The `skilld` command line: thin commands over the daemon (when one runs) or the stores (when none does)."""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import click

from daemon import control
from daemon.config import ConfigError, Settings, load_settings

if TYPE_CHECKING:
    from daemon.app import Skilld

# How long a command waits for the home's lock (another command, or a daemon starting) before giving up.
LOCK_WAIT_SECONDS = 600.0


class Failure(Exception):
    """A failure to report on one line, with an exit status."""

    def __init__(self, message: str, status: int = 1) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class Context:
    config: Path | None
    home: Path | None
    _settings: Settings | None = None

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            try:
                self._settings = load_settings(self.config, self.home)
            except ConfigError as exc:
                raise Failure(str(exc), 2) from None
        return self._settings


def dispatch(
    ctx: Context, command: str, payload: dict[str, Any], local: Callable[[Skilld], Any], exclusive: bool = True
) -> Any:
    """Run a command in the daemon if one answers, else here on the stores under the home's lock."""
    from daemon.app import PathError, Skilld
    from storage.db import ensure_private_dir

    settings = ctx.settings
    home = ensure_private_dir(settings.home)
    lock = control.HomeLock(home)
    deadline = time.monotonic() + LOCK_WAIT_SECONDS
    while True:
        try:
            return control.call(home, command, payload)
        except ConnectionError:
            pass
        except control.DaemonError as exc:
            raise Failure(str(exc)) from None
        if not exclusive or lock.acquire(blocking=False):
            break
        if time.monotonic() > deadline:
            raise Failure(f"skilld home {home} is busy (process {lock.holder()}); try again later")
        time.sleep(0.1)
    try:
        app = Skilld(settings)
        try:
            return local(app)
        finally:
            app.close()
    except PathError as exc:
        raise Failure(str(exc)) from None
    finally:
        lock.release()


def emit(data: Any, as_json: bool, human: Callable[[Any], None]) -> None:
    """Print one JSON document on stdout, or the human form."""
    if as_json:
        sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")
    else:
        human(data)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--config", type=click.Path(path_type=Path, dir_okay=False), help="TOML file (or SKILLD_CONFIG).")
@click.option("--home", type=click.Path(path_type=Path, file_okay=False), help="State directory (or SKILLD_HOME).")
@click.pass_context
def cli(ctx: click.Context, config: Path | None, home: Path | None) -> None:
    """skilld: learn reusable skills from your AI assistants' telemetry."""
    ctx.obj = Context(config, home)


@cli.command()
@click.pass_obj
def run(ctx: Context) -> None:
    """Run the daemon in the foreground (what systemd starts)."""
    from daemon import logs
    from daemon.app import Skilld, stop_on_signals

    settings = ctx.settings
    logs.configure(settings.logging.level, settings.logging.format)
    from storage.db import ensure_private_dir

    home = ensure_private_dir(settings.home)
    lock = control.HomeLock(home)
    if not lock.acquire(blocking=False):
        try:
            control.call(home, "ping", timeout=2)
            raise Failure(f"a skilld daemon already runs on {home} (process {lock.holder()})")
        except (ConnectionError, OSError):
            click.echo(f"skilld: waiting for process {lock.holder()} to finish with {home}", err=True)
            lock.acquire(blocking=True)
    try:
        app = Skilld(settings)
        server = control.ControlServer(home, handlers(app))
        server.start()
        try:
            with stop_on_signals(app):
                app.run()
        finally:
            server.stop()
            app.close()
    finally:
        lock.release()


def handlers(app: Skilld) -> dict[str, control.Handler]:
    """What the daemon answers on its socket: the same functions the commands run locally."""
    return {
        "ping": lambda payload: {"pid": os.getpid()},
        "status": lambda payload: app.status(),
        "ingest": lambda payload: app.ingest([Path(p) for p in payload["paths"]], payload.get("learn", True)).as_dict(),
        "deadletters.list": lambda payload: app.dead_letters(payload.get("limit")),
        "deadletters.replay": lambda payload: app.replay(),
    }


@cli.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--no-learn", is_flag=True, help="Store events only; the daemon scores and extracts them later.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
@click.pass_obj
def ingest(ctx: Context, paths: tuple[Path, ...], no_learn: bool, as_json: bool) -> None:
    """Read files or directories to their end once and store their events (idempotent)."""
    absolute = [p.expanduser().absolute() for p in paths]
    for path in absolute:
        if not path.exists():
            raise Failure(f"cannot read {path}: no such file or directory")
    payload = {"paths": [str(p) for p in absolute], "learn": not no_learn}
    workers = ctx.settings.telemetry.ingest_workers or os.cpu_count() or 1
    report = dispatch(ctx, "ingest", payload, lambda app: app.ingest(absolute, not no_learn, workers).as_dict())

    def human(r: dict[str, int]) -> None:
        click.echo(
            f"{r['files']} files, {r['lines']} lines: {r['events']} new events, {r['duplicates']} already stored, "
            f"{r['dead_letters']} dead letters"
            + (f", {r['pending_bytes']} bytes of unfinished lines left" if r["pending_bytes"] else ""),
            err=True,
        )

    emit(report, as_json, human)


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
@click.pass_obj
def status(ctx: Context, as_json: bool) -> None:
    """Counts and health of every stage, and of every telemetry source."""
    report = dispatch(ctx, "status", {}, lambda app: app.status(), exclusive=False)

    def human(r: dict[str, Any]) -> None:
        keys = (
            "events",
            "interactions",
            "dead_letters",
            "scored",
            "high_value",
            "pending_extractions",
            "parked_extractions",
            "skills",
            "dataset_examples",
            "lag_bytes",
        )
        for key in keys:
            click.echo(f"{key:>20}: {r[key]}", err=True)
        for s in r["sources"]:
            click.echo(
                f"  {s['name']}: {s['files']} files, {s['lines']} lines, {s['events']} events, "
                f"{s['dead_letters']} dead letters, {s['bytes_read']} bytes read, {s['lag_bytes']} bytes behind",
                err=True,
            )

    emit(report, as_json, human)


@cli.group()
def deadletters() -> None:
    """Lines that could not be read, kept aside with their reason."""


@deadletters.command("list")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="At most this many.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
@click.pass_obj
def deadletters_list(ctx: Context, limit: int | None, as_json: bool) -> None:
    """Show dead letters, oldest first: file, offset, reason and the redacted start of the line."""
    letters = dispatch(ctx, "deadletters.list", {"limit": limit}, lambda app: app.dead_letters(limit), exclusive=False)

    def human(rows: list[dict[str, Any]]) -> None:
        for d in rows:
            click.echo(f"{d['id']} {d['path']}:{d['offset']} {d['reason']}", err=True)
        click.echo(f"{len(rows)} dead letters", err=True)

    emit(letters, as_json, human)


@deadletters.command("replay")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
@click.pass_obj
def deadletters_replay(ctx: Context, as_json: bool) -> None:
    """Read every dead-lettered line again from its file (after a fix); those that now read become events."""
    counts = dispatch(ctx, "deadletters.replay", {}, lambda app: app.replay())
    emit(counts, as_json, lambda c: click.echo(", ".join(f"{v} {k.replace('_', ' ')}" for k, v in c.items()), err=True))


def main() -> NoReturn:
    """Entry point: run the CLI, turning user-facing failures into one line and an exit status."""
    try:
        cli.main(standalone_mode=False)
    except Failure as exc:
        click.echo(f"skilld: {exc}", err=True)
        sys.exit(exc.status)
    except click.exceptions.Abort:
        sys.exit(130)
    except click.ClickException as exc:
        click.echo(f"skilld: {exc.format_message()}", err=True)
        sys.exit(exc.exit_code)
    sys.exit(0)


if __name__ == "__main__":
    main()
