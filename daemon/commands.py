"""Every skilld command, defined once: a typed request and a handler on the application.

The CLI parses its arguments into a request's payload and formats the result; the daemon answers the same
payload on `POST /v1/commands/{name}` (what the CLI calls over the socket when a daemon runs), and with no
daemon the CLI runs it here on the stores. A later MCP server calls the same table. A handler sees whether
it runs in the daemon (`app.in_daemon`): with none, `ingest` shares the files among processes and `feedback`
extracts what became valuable before returning; a daemon does both in its own loop.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

if TYPE_CHECKING:
    from daemon.app import Skilld

Progress = Callable[[dict[str, Any]], None]


class Request(BaseModel):
    """A command's arguments, as the CLI sends them (JSON over the socket, or in this process)."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class NoArguments(Request):
    pass


class Ingest(Request):
    paths: list[Path] = Field(min_length=1)
    learn: bool = True


class Limit(Request):
    limit: int | None = Field(default=None, ge=1)


# Who a skill was served to, as the usage ledger records it: "cli", "api", "mcp:<client name>", "claude-code".
Client = Field(default="cli", pattern=r"^[A-Za-z0-9][A-Za-z0-9:._ -]{0,63}$")
Session = Field(default=None, min_length=1, max_length=200)


class Search(Request):
    query: str = Field(min_length=1, max_length=10_000)
    limit: int = Field(default=5, ge=1, le=100)
    client: str = Client
    session: str | None = Session


class ServeSkill(Request):
    skill_id: str = Field(min_length=1)
    client: str = Client
    session: str | None = Session


class Rate(Request):
    skill_id: str = Field(min_length=1)
    helped: bool
    note: str | None = Field(default=None, max_length=2000)
    client: str = Client


class ListSkills(Request):
    retired: bool = False


class ExportSkills(Request):
    file: Path  # a JSON-lines file, or with agent-skills a directory
    format: Literal["jsonl", "agent-skills"] = "jsonl"


class PromptContext(Request):
    prompt: str | None = Field(default=None, max_length=100_000)
    session: str | None = Session
    client: str = Client


class Interactions(Request):
    source: str | None = None
    limit: int = Field(default=20, ge=1)


class Event(Request):
    event_id: str = Field(min_length=1)


class Feedback(Event):
    value: Literal[1, -1]
    correction: str | None = None


class SkillId(Request):
    skill_id: str = Field(min_length=1)


class File(Request):
    file: Path


class Directory(Request):
    directory: Path


class Forget(Request):
    user: str = Field(min_length=1)


class Experiment(Request):
    name: str = Field(min_length=1)


class Since(Request):
    since: float = Field(default=30, gt=0, le=3650, description="days back")


class Report(Request):
    out: Path | None = None
    since: int = Field(default=30, gt=0, le=3650)


class Finetune(Request):
    trigger: str = "manual"


@dataclass(frozen=True)
class Command:
    """One command: its name on the wire, its request, what it does, and whether it takes the home's lock
    when it runs with no daemon (reads do not)."""

    name: str
    request: type[Request]
    handler: Callable[[Skilld, Any, Progress | None], Any]
    exclusive: bool = True


def _ingest(app: Skilld, r: Ingest, progress: Progress | None) -> Any:
    # A daemon ingests in its own process (it has threads, and fork wants none); the CLI alone forks.
    workers = 1 if app.in_daemon else app.settings.telemetry.ingest_workers or os.cpu_count() or 1
    return app.ingest(list(r.paths), r.learn, workers).as_dict()


def _feedback(app: Skilld, r: Feedback, progress: Progress | None) -> Any:
    return app.feedback(r.event_id, r.value, r.correction, drain=not app.in_daemon)


def _export_action(r: ExportSkills) -> str:
    return "export" if r.format == "jsonl" else "publish"


COMMANDS: dict[str, Command] = {
    c.name: c
    for c in (
        Command("ping", NoArguments, lambda app, r, p: {"pid": os.getpid()}, exclusive=False),
        Command("status", NoArguments, lambda app, r, p: app.status(), exclusive=False),
        Command("ingest", Ingest, _ingest),
        Command("deadletters.list", Limit, lambda app, r, p: app.dead_letters(r.limit), exclusive=False),
        Command("deadletters.replay", NoArguments, lambda app, r, p: app.replay()),
        Command("search", Search, lambda app, r, p: app.search(r.query, r.limit, r.client, r.session)),
        Command("context", PromptContext, lambda app, r, p: app.context(r.prompt, r.session, r.client)),
        Command("interactions", Interactions, lambda app, r, p: app.interactions(r.source, r.limit), exclusive=False),
        Command("explain", Event, lambda app, r, p: app.explain(r.event_id)),
        Command("feedback", Feedback, _feedback),
        Command("skills.list", ListSkills, lambda app, r, p: app.skills("retired" if r.retired else "list")),
        Command("skills.show", SkillId, lambda app, r, p: app.skills("show", r.skill_id)),
        Command("skills.get", ServeSkill, lambda app, r, p: app.skill(r.skill_id, r.client, r.session)),
        Command("skills.rate", Rate, lambda app, r, p: app.rate(r.skill_id, r.helped, r.note, r.client)),
        Command("skills.restore", SkillId, lambda app, r, p: app.skills("restore", r.skill_id)),
        Command("skills.export", ExportSkills, lambda app, r, p: app.skills(_export_action(r), str(r.file))),
        Command("skills.import", File, lambda app, r, p: app.skills("import", str(r.file))),
        Command("skills.delete", SkillId, lambda app, r, p: app.skills("delete", r.skill_id)),
        Command("skills.recheck", NoArguments, lambda app, r, p: app.skills("recheck")),
        Command("experiments.list", NoArguments, lambda app, r, p: app.experiments("list"), exclusive=False),
        Command("experiments.show", Experiment, lambda app, r, p: app.experiments("show", r.name)),
        Command("experiments.start", Experiment, lambda app, r, p: app.experiments("start", r.name)),
        Command("experiments.stop", Experiment, lambda app, r, p: app.experiments("stop", r.name)),
        # These read the vector store, which one process opens at a time: with no daemon, under the lock.
        Command("failures", Since, lambda app, r, p: app.failures(r.since)),
        Command("gaps", Since, lambda app, r, p: app.gaps(r.since)),
        Command("report", Report, lambda app, r, p: app.report(r.out, r.since)),
        Command("drift", NoArguments, lambda app, r, p: app.check_drift()),
        Command("dataset.stats", NoArguments, lambda app, r, p: app.dataset("stats")),
        Command("dataset.export", Directory, lambda app, r, p: app.dataset("export", str(r.directory))),
        Command("finetune", Finetune, lambda app, r, p: app.finetune(r.trigger, p)),
        Command("finetune.state", NoArguments, lambda app, r, p: app.finetune_state(), exclusive=False),
        Command("rollback", NoArguments, lambda app, r, p: app.rollback()),
        Command("forget", Forget, lambda app, r, p: app.forget(r.user)),
        Command("housekeeping", NoArguments, lambda app, r, p: app.housekeeping()),
    )
}


def command(name: str) -> Command:
    """A command by name (LookupError names the unknown one)."""
    found = COMMANDS.get(name)
    if found is None:
        raise LookupError(f"unknown command {name!r}")
    return found


def run(app: Skilld, name: str, payload: dict[str, Any] | None = None, progress: Progress | None = None) -> Any:
    """Run one command on the application; ValueError for a request that is not valid for it."""
    found = command(name)
    try:
        request = found.request.model_validate(payload or {})
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(p) for p in error["loc"]) or "request"
        raise ValueError(f"{name}: {where}: {error['msg']}") from None
    return found.handler(app, request, progress)
