"""skilld as an MCP server (the official `mcp` SDK): tools to find, read and rate learned skills, and each
skill as a `skill://<id>` markdown resource.

One server definition, two transports: `skilld mcp` serves it over stdio and calls the commands the way the
CLI does (through the running daemon, or on the stores when none runs); the daemon mounts it at `/mcp` on
its API (streamable HTTP, bearer token) and calls its own commands. Either way a tool is a command of the
registry (`daemon/commands.py`), so a skill an assistant is served is recorded like any other serve.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

import anyio
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ResourceNotFoundError, ToolError
from mcp.types import Resource
from pydantic import BaseModel, Field

# A command by name with its payload (daemon/commands.py), run the way this server's transport runs them.
Call = Callable[[str, dict[str, Any]], Any]

INSTRUCTIONS = (
    "skilld holds procedures learned from this workstation's own past sessions with AI assistants: what "
    "worked, as steps. Before a task that may have been done here before (a build, a deploy, a migration, a "
    "recurring error), call search_skills with the task in your own words. After using a skill, call "
    "rate_skill to say whether it helped: skills that do not help stop being offered."
)


class FoundSkill(BaseModel):
    """A learned skill as the tools return it."""

    id: str = Field(description="the skill's id (for get_skill, rate_skill and skill://<id>)")
    name: str
    description: str = Field(description="what it does and when to use it")
    prerequisites: list[str] = []
    steps: list[str]
    example: str = ""
    source_queries: list[str] = Field(default=[], description="the questions it was learned from")
    score: float | None = Field(default=None, description="search rank: relevance weighed by usefulness")
    relevance: float | None = Field(default=None, description="similarity of the query and the skill, 0 to 1")
    usage_count: int = 0
    last_used: str | None = None
    helped: int = 0
    not_helped: int = 0
    usefulness: float = Field(description="estimated chance it helps (posterior mean, 0 to 1)")
    retired: dict[str, Any] | None = Field(default=None, description="why it is no longer offered, if it is not")


def found(skill: dict[str, Any]) -> FoundSkill:
    """A skill's view as the tools' typed result."""
    return FoundSkill.model_validate({k: v for k, v in skill.items() if k in FoundSkill.model_fields})


def _client(ctx: Context) -> str:
    """The serve's client as the ledger records it: `mcp:<the client's own name>` when it gave one."""
    try:
        params = ctx.session.client_params
        name = params.client_info.name if params is not None else None
    except (AttributeError, LookupError, RuntimeError):
        name = None
    safe = "".join(c for c in (name or "") if c.isalnum() or c in "._-")[:40]
    return f"mcp:{safe}" if safe else "mcp"


class SkillServer(MCPServer):
    """The MCP server over skilld's commands; every served skill is also listed as a resource."""

    def __init__(self, call: Call) -> None:
        super().__init__("skilld", instructions=INSTRUCTIONS, version="1", log_level="WARNING")
        self.call = call

    async def run_command(self, name: str, payload: dict[str, Any]) -> Any:
        """A command off the event loop (commands block on the stores and the embedder). A request the
        caller can fix (an unknown skill, a bad argument) comes back as the command's one-line reason."""
        try:
            return await anyio.to_thread.run_sync(self.call, name, payload)
        except (LookupError, ValueError) as exc:
            reason = str(exc.args[0]) if exc.args else str(exc)
            raise ToolError(reason) from None

    async def list_resources(self) -> list[Resource]:
        """Every served skill, read fresh: skills come and go while a client stays connected."""
        skills = await self.run_command("skills.list", {})
        return [
            Resource(
                uri=f"skill://{s['id']}",
                name=s["id"],
                title=s["name"],
                description=s["description"],
                mime_type="text/markdown",
            )
            for s in skills
        ]


def build(call: Call) -> SkillServer:
    """The server, with its three tools and the `skill://{skill_id}` resource template."""
    server = SkillServer(call)

    @server.tool(
        title="Search learned skills",
        description=(
            "Find procedures learned from this workstation's past AI sessions that fit a task, best first. "
            "Each has its steps, an example, the questions it was learned from, a search score (relevance "
            "weighed by how often it helped) and its usefulness."
        ),
    )
    async def search_skills(
        query: Annotated[str, Field(min_length=1, max_length=10_000, description="the task, in plain words")],
        ctx: Context,
        limit: Annotated[int, Field(ge=1, le=20, description="how many skills at most")] = 5,
    ) -> list[FoundSkill]:
        results = await server.run_command("search", {"query": query, "limit": limit, "client": _client(ctx)})
        return [found(s) for s in results]

    @server.tool(title="Get a learned skill", description="One learned skill, whole, by its id.")
    async def get_skill(
        id: Annotated[str, Field(min_length=1, description="the skill's id, from search_skills")], ctx: Context
    ) -> FoundSkill:
        return found(await server.run_command("skills.get", {"skill_id": id, "client": _client(ctx)}))

    @server.tool(
        title="Rate a learned skill",
        description=(
            "Say whether a skill helped with the task it was used for. Skills that do not help are ranked "
            "lower and, once that is clear, no longer offered."
        ),
    )
    async def rate_skill(
        id: Annotated[str, Field(min_length=1, description="the skill's id")],
        helped: Annotated[bool, Field(description="true if following it helped, false if it did not")],
        ctx: Context,
        note: Annotated[str | None, Field(max_length=2000, description="what went right or wrong")] = None,
    ) -> FoundSkill:
        payload = {"skill_id": id, "helped": helped, "note": note, "client": _client(ctx)}
        return found(await server.run_command("skills.rate", payload))

    @server.resource("skill://{skill_id}", name="skill", title="A learned skill", mime_type="text/markdown")
    async def skill(skill_id: str, ctx: Context) -> str:
        """A learned skill as a markdown document (a read is a serve, like get_skill)."""
        from daemon.briefing import skill_document

        try:
            shown = await server.run_command("skills.get", {"skill_id": skill_id, "client": _client(ctx)})
        except ToolError as exc:
            raise ResourceNotFoundError(str(exc)) from None
        return skill_document(shown)

    return server
