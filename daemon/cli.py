"""The `skilld` command line: thin commands over the daemon (when one runs) or the stores (when none does)."""

from __future__ import annotations

import json
import os
import sqlite3
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import click

from daemon import control
from daemon.config import ConfigError, Settings, load_settings
from daemon.faults import classify, command_line
from storage.db import NewerDatabase

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
    ctx: Context,
    name: str,
    payload: dict[str, Any] | None = None,
    progress: Callable[[dict[str, Any]], None] | None = None,
) -> Any:
    """Run a command in the daemon if one answers, else here on the stores (under the home's lock when the
    command writes): the same registry entry either way (`daemon/commands.py`)."""
    from daemon.app import PathError, Skilld
    from daemon.commands import command, run
    from storage.db import ensure_private_dir

    payload = payload or {}
    exclusive = command(name).exclusive
    settings = ctx.settings
    home = ensure_private_dir(settings.home)
    lock = control.HomeLock(home)
    deadline = time.monotonic() + LOCK_WAIT_SECONDS
    while True:
        try:
            return control.call(home, name, payload)
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
            return run(app, name, payload, progress)
        finally:
            app.close()
    except (PathError, LookupError, ValueError) as exc:
        raise Failure(str(exc.args[0]) if exc.args else str(exc)) from None
    except (OSError, sqlite3.OperationalError) as exc:  # a full disk, a locked database, a file not readable
        fault = classify(exc, home)
        if fault is None and isinstance(exc, sqlite3.OperationalError):
            raise
        raise Failure(command_line(fault) if fault else str(exc)) from None
    finally:
        if exclusive:
            lock.release()


def emit(data: Any, as_json: bool, human: Callable[[Any], None]) -> None:
    """Print one JSON document on stdout, or the human form."""
    if as_json:
        sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")
    else:
        human(data)


# Shared by every command that has a result to print.
json_option = click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")


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
    from daemon.serve import ServeError, serve

    try:
        serve(ctx.settings, _reloader(ctx), lambda line: click.echo(f"skilld: {line}", err=True))
    except ServeError as exc:
        raise Failure(str(exc)) from None
    except (OSError, sqlite3.OperationalError) as exc:  # at start, before a stage can pause and retry
        fault = classify(exc, ctx.settings.home)
        if fault is None:
            raise
        raise Failure(command_line(fault)) from None


def _reloader(ctx: Context) -> Callable[[], Settings]:
    """Read the configuration again (SIGHUP); a file that was there at start and is gone is an error."""
    from daemon.locations import default_config_file

    path = ctx.config or (Path(os.environ["SKILLD_CONFIG"]) if os.environ.get("SKILLD_CONFIG") else None)
    path = path or default_config_file()
    existed = path.is_file()

    def reload() -> Settings:
        if existed and not path.is_file():
            raise ConfigError(f"config: file {path} is gone")
        return load_settings(ctx.config, ctx.home)

    return reload


@cli.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--no-learn", is_flag=True, help="Store events only; the daemon scores and extracts them later.")
@json_option
@click.pass_obj
def ingest(ctx: Context, paths: tuple[Path, ...], no_learn: bool, as_json: bool) -> None:
    """Read files or directories to their end once and store their events (idempotent)."""
    absolute = [p.expanduser().absolute() for p in paths]
    for path in absolute:
        if not path.exists():
            raise Failure(f"cannot read {path}: no such file or directory")
    report = dispatch(ctx, "ingest", {"paths": [str(p) for p in absolute], "learn": not no_learn})

    def human(r: dict[str, int]) -> None:
        click.echo(
            f"{r['files']} files, {r['lines']} lines: {r['events']} new events, {r['duplicates']} already stored, "
            f"{r['dead_letters']} dead letters"
            + (f", {r['pending_bytes']} bytes of unfinished lines left" if r["pending_bytes"] else ""),
            err=True,
        )

    emit(report, as_json, human)


@cli.command()
@json_option
@click.pass_obj
def status(ctx: Context, as_json: bool) -> None:
    """Counts and health of every stage, and of every telemetry source."""
    report = dispatch(ctx, "status")

    def human(r: dict[str, Any]) -> None:
        click.echo(f"{'health':>20}: {r.get('health', 'ok')}", err=True)
        for problem in r.get("problems", []):
            click.echo(f"{problem['stage']:>20}: {problem['error']} (since {problem['since']})", err=True)
            click.echo(f"{'':>20}  -> {problem['action']}", err=True)
        models = r.get("models")
        if models and (r.get("api") or {}).get("socket"):  # a daemon answered: what its process holds
            loaded = [name for name, state in models.items() if state["loaded"]]
            click.echo(f"{'models loaded':>20}: {', '.join(loaded) or 'none (unloaded while idle)'}", err=True)
        keys = (
            "events",
            "interactions",
            "dead_letters",
            "scored",
            "high_value",
            "pending_extractions",
            "parked_extractions",
            "no_skill",
            "rejected",
            "skills",
            "dataset_examples",
            "lag_bytes",
        )
        for key in keys:
            click.echo(f"{key:>20}: {r[key]}", err=True)
        if any(r["retired"].values()):
            click.echo(
                f"{'retired':>20}: {r['retired']['skills']} skills, {r['retired']['examples']} training records "
                "(failed the quality gate on re-check, or did not help; kept, not served, not trained on)",
                err=True,
            )
        drifted = [c for c in ((r.get("drift") or {}).get("checks") or []) if c["drifted"]]
        for check in drifted:
            click.echo(f"{'drift':>20}: {check['name']}: {check['reason']}", err=True)
        if r.get("publish") and r["publish"].get("error"):
            click.echo(f"{'publish':>20}: {r['publish']['dir']}: {r['publish']['error']}", err=True)
        for s in r["sources"]:
            click.echo(
                f"  {s['name']}: {s['files']} files, {s['lines']} lines, {s['events']} events, "
                f"{s['dead_letters']} dead letters, {s['bytes_read']} bytes read, {s['lag_bytes']} bytes behind",
                err=True,
            )
        for a in r.get("acceptance", [])[:10]:
            click.echo(
                f"  accepted {a['signal']} ({a['model']}, {a['file_type']}): {a['accepted']}/{a['shown']} "
                f"= {a['rate']:.0%}",
                err=True,
            )

    emit(report, as_json, human)


@cli.group()
def deadletters() -> None:
    """Lines that could not be read, kept aside with their reason."""


@deadletters.command("list")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="At most this many.")
@json_option
@click.pass_obj
def deadletters_list(ctx: Context, limit: int | None, as_json: bool) -> None:
    """Show dead letters, oldest first: file, offset, reason and the redacted start of the line."""
    letters = dispatch(ctx, "deadletters.list", {"limit": limit})

    def human(rows: list[dict[str, Any]]) -> None:
        for d in rows:
            click.echo(f"{d['id']} {d['path']}:{d['offset']} {d['reason']}", err=True)
        click.echo(f"{len(rows)} dead letters", err=True)

    emit(letters, as_json, human)


@deadletters.command("replay")
@json_option
@click.pass_obj
def deadletters_replay(ctx: Context, as_json: bool) -> None:
    """Read every dead-lettered line again from its file (after a fix); those that now read become events."""
    counts = dispatch(ctx, "deadletters.replay")
    emit(counts, as_json, lambda c: click.echo(", ".join(f"{v} {k.replace('_', ' ')}" for k, v in c.items()), err=True))


def _show_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, default=str), err=True)


@cli.command()
@click.argument("query")
@click.option("--limit", type=click.IntRange(1, 100), default=5, show_default=True)
@json_option
@click.pass_obj
def search(ctx: Context, query: str, limit: int, as_json: bool) -> None:
    """Learned skills that match a question, best first (relevance weighed by usefulness)."""
    hits = dispatch(ctx, "search", {"query": query, "limit": limit})

    def human(rows: list[dict[str, Any]]) -> None:
        for hit in rows:
            click.echo(f"{hit['score']:.3f}  {hit['name']}  ({hit['id']}, {_usefulness(hit)})", err=True)
            click.echo(f"       {hit['description']}", err=True)
            for number, step in enumerate(hit.get("steps", []), 1):
                click.echo(f"       {number}. {step}", err=True)
        if not rows:
            click.echo("no skills yet", err=True)

    emit(hits, as_json, human)


def _usefulness(skill: dict[str, Any]) -> str:
    """A skill's usefulness with its credible interval and evidence, in one phrase."""
    low, high = skill.get("usefulness_interval") or [0.0, 1.0]
    helped, not_helped = skill.get("helped", 0), skill.get("not_helped", 0)
    return (
        f"usefulness {skill.get('usefulness', 0.5):.2f} [{low:.2f}-{high:.2f}], helped {helped}/{helped + not_helped}"
        f", served {skill.get('usage_count', 0)}"
    )


@cli.command()
@click.argument("prompt")
@click.option("--session", help="The session the prompt belongs to (its outcome then judges the skills).")
@json_option
@click.pass_obj
def context(ctx: Context, prompt: str, session: str | None, as_json: bool) -> None:
    """Print the skills relevant to a prompt as a markdown block to put before it (empty when none are)."""
    result = dispatch(ctx, "context", {"prompt": prompt, "session": session, "client": "cli"})

    def human(r: dict[str, Any]) -> None:
        sys.stdout.write(r["markdown"])

    emit(result, as_json, human)


@cli.command()
@click.pass_obj
def mcp(ctx: Context) -> None:
    """Serve the learned skills to an assistant over MCP (stdio): search_skills, get_skill, rate_skill."""
    from daemon.mcp_server import build

    home = ctx.settings.home  # a bad configuration fails here, before the client connects
    click.echo(f"skilld: MCP over stdio for {home}", err=True)
    build(lambda name, payload: _answer(ctx, name, payload)).run()


def _answer(ctx: Context, name: str, payload: dict[str, Any]) -> Any:
    """A command for the MCP server: a failure to report is a ValueError, which it hands the client."""
    try:
        return dispatch(ctx, name, payload)
    except Failure as exc:
        raise ValueError(str(exc)) from None


@cli.command(context_settings={"ignore_unknown_options": True})
@click.argument("tool", type=click.Choice(["claude-code"]))
@click.option("--deadline", type=float, default=1.0, show_default=True, help="Seconds before it gives up silently.")
@click.pass_obj
def hook(ctx: Context, tool: str, deadline: float) -> None:
    """An editor hook: read the hook's JSON on stdin, print the skills for its prompt (Claude Code:
    UserPromptSubmit and SessionStart). With no daemon, or any error, it prints nothing and exits 0."""
    from daemon.hook import run

    options = {k: str(v) for k, v in (("home", ctx.home), ("config", ctx.config)) if v is not None}
    sys.exit(run(options, [tool, "--deadline", str(deadline)]))


@cli.command()
@click.option("--yes", "-y", is_flag=True, help="Write the found directories without asking.")
@click.option("--force", is_flag=True, help="Add them to an existing configuration file (its other keys are kept).")
@json_option
@click.pass_obj
def init(ctx: Context, yes: bool, force: bool, as_json: bool) -> None:
    """Find the telemetry of Continue, Claude Code and Codex CLI here and write it into the configuration."""
    from daemon.discover import ConfigExists, discover, write_paths
    from daemon.locations import default_config_file

    env = os.environ.get("SKILLD_CONFIG")
    config = ctx.config or (Path(env) if env else default_config_file())
    found = discover(Path.home())
    for f in found:
        click.echo(f"found {f.tool}: {f.path} ({f.files} JSONL files)", err=True)
    result: dict[str, Any] = {"config": str(config), "found": [], "written": False, "paths": []}
    result["found"] = [{"tool": f.tool, "path": str(f.path), "files": f.files} for f in found]
    if not found:
        click.echo("no telemetry of Continue, Claude Code or Codex CLI found under your home", err=True)
    elif config.exists() and not force:
        raise Failure(f"{config} exists; run `skilld init --force` to add the found paths to it")
    elif yes or (sys.stdin.isatty() and click.confirm(f"write these into {config}?", err=True)):
        try:
            result["paths"] = write_paths(config, [f.path for f in found], force)
        except ConfigExists as exc:  # created meanwhile
            raise Failure(str(exc)) from None
        result["written"] = True
        click.echo(
            f"wrote telemetry.paths to {config}: skilld follows these (not its default <home>/telemetry, unless "
            "listed); start it with `scripts/run` or the service",
            err=True,
        )
    else:
        raise Failure("nothing written: confirm, or run `skilld init --yes`")
    if as_json:
        emit(result, True, lambda r: None)


@cli.command()
@click.option("--source", help="Only this source (continue, claude-code, codex, otel, ralph, ...).")
@click.option("--limit", type=click.IntRange(1, 10_000), default=20, show_default=True)
@json_option
@click.pass_obj
def interactions(ctx: Context, source: str | None, limit: int, as_json: bool) -> None:
    """What skilld understood of your tools' telemetry: the newest interactions first."""
    rows = dispatch(ctx, "interactions", {"source": source, "limit": limit})

    def human(rows: list[dict[str, Any]]) -> None:
        if not rows:
            click.echo("no interactions yet", err=True)
        for r in rows:
            score = "-" if r["value_score"] is None else f"{r['value_score']:.2f}"
            thumbs = {1: "+1", -1: "-1"}.get(r["feedback"], "")
            click.echo(f"{r['key']}  [{r['source']} {r['kind']}] {r['outcome'] or ''} {thumbs} score {score}", err=True)
            click.echo(f"  Q: {_line(r['query'])}", err=True)
            click.echo(f"  A: {_line(r['response'])}", err=True)
            if r["signals"]:
                click.echo(f"  signals: {json.dumps(r['signals'], default=str)}", err=True)

    emit(rows, as_json, human)


def _line(text: str | None, width: int = 110) -> str:
    """Text on one line, cut to a width."""
    flat = " ".join((text or "").split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


@cli.command()
@click.argument("event_id")
@json_option
@click.pass_obj
def explain(ctx: Context, event_id: str, as_json: bool) -> None:
    """An event's value score, with its five components and why each has its value."""
    result = dispatch(ctx, "explain", {"event_id": event_id})

    def human(r: dict[str, Any]) -> None:
        click.echo(f"value score {r['score']:.3f} (threshold {r['threshold']}) for {r['interaction']}", err=True)
        for name, weight in r["weights"].items():
            click.echo(f"  {name:<12} {r[name]:.2f} x {weight:.2f}  {r['reasons'][name]}", err=True)

    emit(result, as_json, human)


@cli.command()
@click.argument("event_id")
@click.option("--up", "value", flag_value=1, help="The answer was good.")
@click.option("--down", "value", flag_value=-1, help="The answer was bad.")
@click.option("--correction", help="What the answer should have been (kept as a preference pair).")
@json_option
@click.pass_obj
def feedback(ctx: Context, event_id: str, value: int | None, correction: str | None, as_json: bool) -> None:
    """Thumbs up or down for an event's interaction; it is scored again at once."""
    if value is None:
        raise Failure("feedback: give --up or --down", 2)
    result = dispatch(ctx, "feedback", {"event_id": event_id, "value": value, "correction": correction})
    emit(
        result,
        as_json,
        lambda r: click.echo(
            f"recorded; value score now {r['score']['score']:.3f}" if r["score"] else "recorded", err=True
        ),
    )


@cli.group()
def skills() -> None:
    """The skill library: list, show, rate, restore, export, import, delete, recheck."""


def _skills(ctx: Context, action: str, argument: str | None) -> Any:
    """One of the `skills.*` commands: its argument is a skill id (show, delete) or a file (export, import)."""
    key = "file" if action in ("export", "import") else "skill_id"
    return dispatch(ctx, f"skills.{action}", {key: argument} if argument is not None else {})


@skills.command("list")
@click.option("--retired", is_flag=True, help="The retired skills instead (kept, no longer served), with why.")
@json_option
@click.pass_obj
def skills_list(ctx: Context, retired: bool, as_json: bool) -> None:
    """Every learned skill, with its evidence and usefulness."""

    def human(rows: list[dict[str, Any]]) -> None:
        for s in rows:
            grounding = (s.get("quality") or {}).get("grounding")
            grounded = f", grounding {grounding:.2f}" if isinstance(grounding, float | int) else ""
            click.echo(
                f"{s['id']}  {s['name']}  evidence {s['evidence_count']}, success {s['success_rate']:.0%}{grounded}, "
                f"{_usefulness(s)}",
                err=True,
            )
            if s.get("retired"):
                why = s["retired"]
                click.echo(f"    retired by {why.get('by', 'quality gate')}: {why['reason']}", err=True)
        click.echo(f"{len(rows)} {'retired ' if retired else ''}skills", err=True)

    emit(dispatch(ctx, "skills.list", {"retired": retired}), as_json, human)


@skills.command("rate")
@click.argument("skill_id")
@click.option("--helped", "helped", flag_value=True, default=None, help="It helped.")
@click.option("--not-helped", "helped", flag_value=False, help="It did not help.")
@click.option("--note", help="What went right or wrong.")
@json_option
@click.pass_obj
def skills_rate(ctx: Context, skill_id: str, helped: bool | None, note: str | None, as_json: bool) -> None:
    """Say whether a skill helped; one that confidently does not is retired."""
    if helped is None:
        raise Failure("give --helped or --not-helped", 2)
    result = dispatch(ctx, "skills.rate", {"skill_id": skill_id, "helped": helped, "note": note, "client": "cli"})

    def human(s: dict[str, Any]) -> None:
        click.echo(f"{s['id']}  {s['name']}: {_usefulness(s)}", err=True)
        if s.get("retired"):
            click.echo(f"retired: {s['retired']['reason']}", err=True)

    emit(result, as_json, human)


@skills.command("restore")
@click.argument("skill_id")
@json_option
@click.pass_obj
def skills_restore(ctx: Context, skill_id: str, as_json: bool) -> None:
    """Serve a retired skill again."""
    emit(_skills(ctx, "restore", skill_id), as_json, _show_json)


@skills.command("show")
@click.argument("skill_id")
@json_option
@click.pass_obj
def skills_show(ctx: Context, skill_id: str, as_json: bool) -> None:
    """One skill with its evidence."""
    emit(_skills(ctx, "show", skill_id), as_json, _show_json)


@skills.command("export")
@click.argument("file", type=click.Path(path_type=Path))
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["jsonl", "agent-skills"]),
    default="jsonl",
    show_default=True,
    help="jsonl: one file another workstation can import; agent-skills: a directory of SKILL.md folders.",
)
@json_option
@click.pass_obj
def skills_export(ctx: Context, file: Path, fmt: str, as_json: bool) -> None:
    """Write every served skill: to a JSONL file, or as Agent Skills (one folder per skill) into a directory."""
    emit(dispatch(ctx, "skills.export", {"file": str(file.absolute()), "format": fmt}), as_json, _show_json)


@skills.command("import")
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False, exists=True))
@json_option
@click.pass_obj
def skills_import(ctx: Context, file: Path, as_json: bool) -> None:
    """Read an export; skills already here gain its evidence instead of being duplicated."""
    emit(_skills(ctx, "import", str(file.absolute())), as_json, _show_json)


@skills.command("delete")
@click.argument("skill_id")
@json_option
@click.pass_obj
def skills_delete(ctx: Context, skill_id: str, as_json: bool) -> None:
    """Delete one skill."""
    emit(_skills(ctx, "delete", skill_id), as_json, _show_json)


@skills.command("recheck")
@json_option
@click.pass_obj
def skills_recheck(ctx: Context, as_json: bool) -> None:
    """Hold every stored skill and training record to the quality gate; retire (keep, stop serving) failures."""

    def human(r: dict[str, Any]) -> None:
        for retired in r["reasons"]:
            click.echo(f"retired {retired['skill']}  {retired['name']}: {retired['reason']}", err=True)
        click.echo(
            f"{r['skills_checked']} skills checked, {r['skills_retired']} retired; "
            f"{r['examples_checked']} training records checked, {r['examples_retired']} retired",
            err=True,
        )

    emit(_skills(ctx, "recheck", None), as_json, human)


_since = click.option(
    "--since", type=click.FloatRange(min=0, min_open=True), default=30, show_default=True, help="Days back."
)


@cli.command()
@_since
@json_option
@click.pass_obj
def failures(ctx: Context, since: float, as_json: bool) -> None:
    """Clusters of failed and low-value interactions: size, a representative question, what they share."""

    def human(rows: list[dict[str, Any]]) -> None:
        for c in rows:
            click.echo(f"{c['size']:4}  {_line(c['representative'], 100)}", err=True)
            if c["shared"]:
                click.echo(f"      shared: {'; '.join(c['shared'])}", err=True)
        if not rows:
            click.echo("no failure clusters", err=True)

    emit(dispatch(ctx, "failures", {"since": since}), as_json, human)


@cli.command()
@_since
@json_option
@click.pass_obj
def gaps(ctx: Context, since: float, as_json: bool) -> None:
    """Topics asked often that no served skill answers (or only a retired one), most wanted first."""

    def human(rows: list[dict[str, Any]]) -> None:
        for g in rows:
            near = (
                f"nearest skill {g['nearest_skill']!r} at {g['nearest_similarity']:.2f}" if g["nearest_skill"] else ""
            )
            retired = ", only a retired skill covers it" if g["only_retired"] else ""
            click.echo(f"{g['asked']:4}x  {_line(g['topic'], 90)}  ({near}{retired})", err=True)
        if not rows:
            click.echo("no knowledge gaps", err=True)

    emit(dispatch(ctx, "gaps", {"since": since}), as_json, human)


@cli.command()
@click.option("--out", type=click.Path(path_type=Path, file_okay=False), help="Directory (default <home>/report).")
@click.option("--since", type=click.IntRange(min=1), default=30, show_default=True, help="Days back.")
@json_option
@click.pass_obj
def report(ctx: Context, out: Path | None, since: int, as_json: bool) -> None:
    """Write the HTML report: is skilld learning, and what to do next (the daemon serves it at /report)."""
    payload = {"out": str(out.absolute()) if out else None, "since": since}

    def human(r: dict[str, Any]) -> None:
        for sentence in r["verdict"]:
            click.echo(sentence, err=True)
        click.echo(f"report: {r['path']}", err=True)

    emit(dispatch(ctx, "report", payload), as_json, human)


@cli.command()
@json_option
@click.pass_obj
def drift(ctx: Context, as_json: bool) -> None:
    """Check now for drift of the recent window against the reference one (value scores, sources, topics)."""

    def human(r: dict[str, Any]) -> None:
        for c in r["checks"]:
            click.echo(
                f"{c['name']:12} psi {c['psi']:.3f}  {'DRIFT' if c['drifted'] else 'ok':5}  {c['reason']}", err=True
            )

    emit(dispatch(ctx, "drift"), as_json, human)


@cli.group()
def experiments() -> None:
    """A/B tests of extraction (configured under [[experiments]]): list, show, start, stop."""


@experiments.command("list")
@json_option
@click.pass_obj
def experiments_list(ctx: Context, as_json: bool) -> None:
    """The configured experiments, their state and trials."""

    def human(rows: list[dict[str, Any]]) -> None:
        for e in rows:
            arms = ", ".join(f"{a['name']} ({a['prompt']}, share {a['share']})" for a in e["arms"])
            promoted = f", promoted {e['promoted']}" if e.get("promoted") else ""
            click.echo(f"{e['name']}  {e['state']}{promoted}, {e['trials']} trials, {e['policy']}: {arms}", err=True)
        if not rows:
            click.echo("no experiments configured ([[experiments]] in the configuration)", err=True)

    emit(dispatch(ctx, "experiments.list"), as_json, human)


@experiments.command("show")
@click.argument("name")
@json_option
@click.pass_obj
def experiments_show(ctx: Context, name: str, as_json: bool) -> None:
    """Each arm's figures, the comparisons with the control, and the decision as it stands."""

    def human(r: dict[str, Any]) -> None:
        head = f"{r['name']}: {r['state']} (alpha {r['alpha']}, {r['min_samples']} trials per arm to decide)"
        click.echo(head, err=True)
        for a in r["arms"]:
            figures = ", ".join(f"{k} {v}" for k, v in a.items() if k not in ("name", "prompt", "share"))
            click.echo(f"  {a['name']} ({a['prompt']}): {figures}", err=True)
        for c in r["comparisons"]:
            p = "n/a" if c["p_value"] is None else f"{c['p_value']:.3g}"
            more = c["still_needed_per_arm"]
            click.echo(
                f"  {c['metric']}: {c['treatment']} {c['treatment_value']:.3g}"
                f" vs {c['control']} {c['control_value']:.3g}, effect {c['effect']:+.3g}, p {p} ({c['test']})"
                + (f", {more} more per arm to detect it" if more else ""),
                err=True,
            )
        if r["verdict"]:
            click.echo(f"  {r['verdict']['reason']}", err=True)

    emit(dispatch(ctx, "experiments.show", {"name": name}), as_json, human)


@experiments.command("start")
@click.argument("name")
@json_option
@click.pass_obj
def experiments_start(ctx: Context, name: str, as_json: bool) -> None:
    """Run a configured experiment (one at a time: a running one stops)."""
    emit(dispatch(ctx, "experiments.start", {"name": name}), as_json, _show_json)


@experiments.command("stop")
@click.argument("name")
@json_option
@click.pass_obj
def experiments_stop(ctx: Context, name: str, as_json: bool) -> None:
    """Stop a running experiment without promoting an arm."""
    emit(dispatch(ctx, "experiments.stop", {"name": name}), as_json, _show_json)


@cli.group()
def dataset() -> None:
    """The fine-tuning dataset: stats, export."""


@dataset.command("stats")
@json_option
@click.pass_obj
def dataset_stats(ctx: Context, as_json: bool) -> None:
    """Examples, preference pairs, sources and size of the dataset."""
    emit(dispatch(ctx, "dataset.stats"), as_json, _show_json)


@dataset.command("export")
@click.argument("directory", type=click.Path(path_type=Path, file_okay=False))
@json_option
@click.pass_obj
def dataset_export(ctx: Context, directory: Path, as_json: bool) -> None:
    """Write train.jsonl and validation.jsonl (a stable split) into a directory."""
    target = str(directory.absolute())
    result = dispatch(ctx, "dataset.export", {"directory": target})
    emit(result, as_json, _show_json)


@cli.command()
@click.option("--now", is_flag=True, help="Run one cycle now and wait for it (else show the model registry).")
@json_option
@click.pass_obj
def finetune(ctx: Context, now: bool, as_json: bool) -> None:
    """Fine-tune the local model on the dataset: train, evaluate, promote or reject, deploy."""
    if not now:
        state = dispatch(ctx, "finetune.state")
        emit(state, as_json, _show_json)
        return
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    with Progress(
        TextColumn("fine-tuning"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total} steps"),
        TextColumn("{task.fields[detail]}"),
        TimeRemainingColumn(),
        console=_stderr_console(),
        transient=True,
    ) as bar:
        task = bar.add_task("train", total=None, detail="")

        def show(event: dict[str, Any]) -> None:
            bar.update(
                task,
                total=event["steps"],
                completed=event["step"],
                detail=f"loss {event['loss']:.3f}, {event['tokens_per_s']:.0f} tok/s",
            )

        result = _finetune_with_progress(ctx, show)
    if result["status"] == "failed":
        raise Failure(f"fine-tuning failed: {result['reason']}")

    def human(r: dict[str, Any]) -> None:
        line = (
            f"{r['status']}"
            + (f" v{r['version']}" if r["version"] else "")
            + (f": {r['reason']}" if r.get("reason") else "")
        )
        click.echo(line, err=True)
        if r.get("adapter"):
            click.echo(f"adapter {r['adapter']}", err=True)

    emit(result, as_json, human)


def _stderr_console() -> Any:
    from rich.console import Console

    return Console(stderr=True)


def _finetune_with_progress(ctx: Context, show: Callable[[dict[str, Any]], None]) -> Any:
    """Run a cycle in the daemon (polling its progress) or here (with a progress callback)."""
    import threading

    home = ctx.settings.home
    outcome: dict[str, Any] = {}

    def ask_daemon() -> None:
        try:
            outcome["result"] = control.call(home, "finetune", {"trigger": "manual"})
        except Exception as exc:  # handed to the main thread below
            outcome["error"] = exc

    try:
        control.call(home, "ping", timeout=5)
    except (ConnectionError, OSError):
        return dispatch(ctx, "finetune", {"trigger": "manual"}, progress=show)
    worker = threading.Thread(target=ask_daemon, daemon=True)
    worker.start()
    while worker.is_alive():
        worker.join(timeout=1.0)
        try:
            running = control.call(home, "finetune.state", timeout=5).get("running")
        except (ConnectionError, OSError, control.DaemonError):
            continue
        if isinstance(running, dict) and "step" in running:
            show(running)
    if "error" in outcome:
        raise Failure(str(outcome["error"]))
    return outcome["result"]


@cli.command()
@json_option
@click.pass_obj
def rollback(ctx: Context, as_json: bool) -> None:
    """Return to the previously active fine-tuned version (or the base model), at once."""
    result = dispatch(ctx, "rollback")
    emit(
        result,
        as_json,
        lambda r: click.echo(
            f"rolled back v{r['rolled_back']}; now "
            + (f"v{r['active_version']}" if r["active_version"] else "the base model"),
            err=True,
        ),
    )


@cli.command()
@click.option("--user", "user_id", required=True, help="The user id as the telemetry carries it (it is hashed here).")
@json_option
@click.pass_obj
def forget(ctx: Context, user_id: str, as_json: bool) -> None:
    """Delete everything derived from one user: events, scores, dead letters, skills, dataset records."""
    result = dispatch(ctx, "forget", {"user": user_id})

    def human(r: dict[str, Any]) -> None:
        click.echo(
            f"forgot {r['user']}: {r['interactions']} interactions, {r['events']} events, {r['scores']} scores, "
            f"{r['dead_letters']} dead letters, {r['skills_deleted']} skills deleted and {r['skills_updated']} "
            f"updated, {r['dataset_examples']} dataset examples, {r['preference_pairs']} preference pairs",
            err=True,
        )
        if r["model_versions"]:
            versions = ", ".join(f"v{v}" for v in r["model_versions"])
            click.echo(
                f"model versions trained on their data: {versions} (roll back or retrain to drop them)", err=True
            )

    emit(result, as_json, human)


@cli.command()
@json_option
@click.pass_obj
def housekeeping(ctx: Context, as_json: bool) -> None:
    """Run the scheduled upkeep now: retention, compression of read telemetry (if managed), vacuum."""
    emit(dispatch(ctx, "housekeeping"), as_json, _show_json)


def main() -> NoReturn:
    """Entry point: run the CLI, turning user-facing failures into one line and an exit status."""
    os.umask(0o077)  # everything skilld writes is its user's alone
    try:
        cli.main(standalone_mode=False)
    except Failure as exc:
        click.echo(f"skilld: {exc}", err=True)
        sys.exit(exc.status)
    except NewerDatabase as exc:  # nothing to retry: this skilld cannot read the home's database
        click.echo(f"skilld: {exc}", err=True)
        sys.exit(1)
    except click.exceptions.Abort:
        sys.exit(130)
    except click.ClickException as exc:
        click.echo(f"skilld: {exc.format_message()}", err=True)
        sys.exit(exc.exit_code)
    sys.exit(0)


if __name__ == "__main__":
    main()
