"""The local HTTP API (FastAPI): health, status, search, feedback, metrics, and the CLI's commands.

One application, served on `api.host:api.port` and on the daemon's unix socket (`<home>/skilld.sock`,
the one the CLI uses). Every request but /health, /ready and /metrics needs the bearer token kept in
`<home>/api.token` (mode 0600); the socket also refuses other users' processes. Handlers are plain
functions, so FastAPI runs them on its thread pool: the event loop keeps answering while a model runs
or a long command holds the pipeline.
"""

# No `from __future__ import annotations` here: FastAPI reads the handlers' annotations at runtime, and
# those of functions nested in create_api cannot be resolved from strings.
import hmac
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Annotated, Any, Literal

from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field, model_validator
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from daemon.adapters.continue_dev import CHAT_KEY, autocomplete_key
from daemon.commands import COMMANDS
from daemon.commands import run as run_command
from daemon.control import TOKEN_NAME
from daemon.metrics import CONTENT_TYPE, Metrics

if TYPE_CHECKING:
    from daemon.app import Skilld

log = logging.getLogger(__name__)


class Rejected(Exception):
    """A request skilld cannot act on; its message goes back with a 4xx status."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


class FeedbackRequest(BaseModel):
    """Explicit feedback from an editor plugin, addressed by skilld's event id or by the source's own keys."""

    model_config = ConfigDict(extra="forbid")

    rating: Literal["up", "down"] = Field(description="thumbs up (the answer was good) or down")
    correction: str | None = Field(default=None, max_length=100_000, description="what the answer should have been")
    event_id: str | None = Field(default=None, description="skilld's id of any event of the interaction")
    completion_id: str | None = Field(default=None, description="a Continue autocomplete `completionId`")
    session_id: str | None = Field(default=None, description="the source's session id (with `prompt`)")
    prompt: str | None = Field(default=None, description="the prompt as the plugin sent it (with `session_id`)")

    @model_validator(mode="after")
    def _one_address(self) -> "FeedbackRequest":
        ways = [self.event_id is not None, self.completion_id is not None, self.session_id is not None]
        if sum(ways) != 1:
            raise ValueError("address the interaction one way: event_id, completion_id, or session_id with prompt")
        if (self.session_id is None) != (self.prompt is None):
            raise ValueError("session_id and prompt go together")
        return self


class RatingRequest(BaseModel):
    """Explicit evidence that a served skill helped or did not."""

    model_config = ConfigDict(extra="forbid")

    helped: bool = Field(description="true: following the skill helped; false: it did not")
    note: str | None = Field(default=None, max_length=2000, description="what went right or wrong")
    client: str = Field(default="api", pattern=r"^[A-Za-z0-9][A-Za-z0-9:._ -]{0,63}$", description="who rates")


class Problem(BaseModel):
    stage: str
    error: str
    since: str
    action: str
    kind: str


class Health(BaseModel):
    status: Literal["ok"]  # the process answers
    health: Literal["ok", "degraded"]  # every stage works, or some are paused by a fault (see problems)
    problems: list[Problem]


class Readiness(BaseModel):
    ready: bool


LOOPBACK = ("127.0.0.1", "::1", "localhost")


def create_api(app: "Skilld", metrics: Metrics, token: str) -> FastAPI:
    """The API over a running daemon.

    Every request needs the bearer token but /health, /ready and (unless `api.metrics_public = false`)
    /metrics; the unix socket also refuses other users' processes (`daemon/control.py`). Host headers other
    than the daemon's own are refused, so a web page cannot reach the API through DNS rebinding.
    """
    from mcp.server.transport_security import TransportSecuritySettings

    from daemon.mcp_server import build

    # The MCP server at /mcp calls this daemon's own commands. Stateless and JSON: every request stands
    # alone, so a client needs no session and a restart of the daemon breaks none. The Host header is
    # checked by the middleware below and the token is required, so the SDK's own DNS-rebinding check
    # (which would refuse the unix socket's Host) is off.
    skills_mcp = build(lambda name, payload: run_command(app, name, payload))
    mcp_app = skills_mcp.streamable_http_app(
        streamable_http_path="/mcp",
        stateless_http=True,
        json_response=True,
        transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False),
    )

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        async with skills_mcp.session_manager.run():
            yield

    api = FastAPI(
        title="skilld",
        summary="Learn reusable skills from your AI assistants' telemetry.",
        version="1",
        docs_url="/docs",
        lifespan=lifespan,
    )
    host = app.settings.api.host
    # Bound to every address (0.0.0.0, ::), clients name the machine as they know it: any Host, token for all.
    trusted = ["*"] if host in ("0.0.0.0", "::") else sorted({*LOOPBACK, "[::1]", host, f"[{host}]"})
    api.add_middleware(TrustedHostMiddleware, allowed_hosts=trusted)
    bearer = HTTPBearer(auto_error=False, description=f"the token in SKILLD_HOME/{TOKEN_NAME}")

    def authorized(credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> None:
        if credentials is None or not hmac.compare_digest(credentials.credentials.encode(), token.encode()):
            raise HTTPException(
                401, "a bearer token is required (see SKILLD_HOME/api.token)", {"WWW-Authenticate": "Bearer"}
            )

    # Every route needs the token, reads included, on TCP and on the socket alike: skills, statuses and
    # searches carry the user's own questions, and any local user can reach a loopback port. Liveness and
    # readiness carry no user data; /metrics carries counts only, open unless `api.metrics_public = false`.
    readable = [Depends(authorized)]
    counts = [] if app.settings.api.metrics_public else readable
    # An ASGI app as the endpoint: Starlette passes it every method (POST, GET, DELETE) at this path.
    api.router.routes.append(Route("/mcp", TokenRequired(mcp_app, token), include_in_schema=False))

    @api.exception_handler(HTTPException)
    async def _http_error(request: Request, exc: HTTPException) -> JSONResponse:
        return JSONResponse({"error": exc.detail}, exc.status_code, headers=exc.headers)

    @api.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        # Where and what, never the input itself: a request body may carry a secret.
        errors = [{"loc": list(e.get("loc", ())), "msg": str(e["msg"]), "type": e["type"]} for e in exc.errors()]
        first = errors[0]
        where = ".".join(str(p) for p in first["loc"] if p != "body")
        message = first["msg"].removeprefix("Value error, ")
        return JSONResponse({"error": f"{where}: {message}" if where else message, "detail": errors}, 422)

    @api.exception_handler(Rejected)
    async def _rejected(request: Request, exc: Rejected) -> JSONResponse:
        return JSONResponse({"error": str(exc)}, exc.status)

    @api.exception_handler(Exception)
    async def _failed(request: Request, exc: Exception) -> JSONResponse:
        log.error("request failed", extra={"path": request.url.path, "error": type(exc).__name__})
        return JSONResponse({"error": f"internal error ({type(exc).__name__}); see the daemon's log"}, 500)

    @api.get("/health", tags=["service"], summary="Liveness, and what is wrong now (`health`, `problems`).")
    def health() -> Health:
        return Health(status="ok", **app.health.report())

    @api.get("/ready", tags=["service"], summary="Readiness: stores open and the tailer running.")
    def ready() -> JSONResponse:
        is_ready = app.ready.is_set() and not app.stopping.is_set()
        return JSONResponse(Readiness(ready=is_ready).model_dump(), 200 if is_ready else 503)

    @api.get(
        "/v1/status",
        tags=["read"],
        dependencies=readable,
        summary="Counts and health of every stage (as `skilld status --json`).",
    )
    def status() -> dict[str, Any]:
        return app.status()

    @api.get(
        "/v1/search",
        tags=["read"],
        dependencies=readable,
        summary="Learned skills best matching a question (as `skilld search`).",
    )
    def search(
        q: Annotated[str, Query(min_length=1, max_length=10_000, description="the question")],
        limit: Annotated[int, Query(ge=1, le=100)] = 5,
        client: Annotated[str, Query(pattern=r"^[A-Za-z0-9][A-Za-z0-9:._ -]{0,63}$", description="who asks")] = "api",
        session: Annotated[str | None, Query(max_length=200, description="the asking session's id")] = None,
    ) -> list[dict[str, Any]]:
        return app.search(q, limit, client, session, record=True)

    @api.get("/report", tags=["read"], dependencies=readable, summary="The latest `skilld report` (HTML).")
    def report() -> Response:
        path = app.home / "report" / "report.html"
        if not path.is_file():
            raise Rejected("no report yet: run `skilld report`", 404)
        return Response(path.read_bytes(), media_type="text/html; charset=utf-8")

    @api.get("/metrics", tags=["service"], dependencies=counts, summary="Prometheus metrics (skilld_* families).")
    def prometheus() -> Response:
        return Response(metrics.exposition(), media_type=CONTENT_TYPE)

    @api.post("/v1/feedback", tags=["write"], dependencies=[Depends(authorized)], summary="Thumbs and corrections.")
    def feedback(body: FeedbackRequest) -> dict[str, Any]:
        key = _address(app, body)
        try:
            return app.feedback(key, 1 if body.rating == "up" else -1, body.correction)
        except LookupError as exc:
            raise Rejected(str(exc.args[0]), 404) from None

    @api.post(
        "/v1/skills/{skill_id}/rating",
        tags=["write"],
        dependencies=[Depends(authorized)],
        summary="Say whether a served skill helped (as `skilld skills rate`).",
    )
    def rate(skill_id: str, body: RatingRequest) -> dict[str, Any]:
        try:
            return app.rate(skill_id, body.helped, body.note, body.client)
        except LookupError as exc:
            raise Rejected(str(exc.args[0]), 404) from None

    @api.post("/v1/commands/{command}", tags=["cli"], dependencies=[Depends(authorized)], summary="A CLI command.")
    def command(command: str, payload: dict[str, Any]) -> Any:
        if command not in COMMANDS:
            raise Rejected(f"unknown command {command!r}", 404)
        log.debug("command served", extra={"command": command})
        try:
            return run_command(app, command, payload)
        except (LookupError, ValueError, OSError) as exc:  # a request the user can fix: one line back
            raise Rejected(str(exc.args[0]) if exc.args else str(exc)) from None

    return api


class TokenRequired:
    """An ASGI app behind the API's bearer token (the MCP endpoint: it reads skills and records ratings)."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app = app
        self.expected = f"Bearer {token}".encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        given = dict(scope.get("headers") or []).get(b"authorization", b"")
        if hmac.compare_digest(given, self.expected):
            await self.app(scope, receive, send)
            return
        response = JSONResponse(
            {"error": f"a bearer token is required (see SKILLD_HOME/{TOKEN_NAME})"},
            401,
            headers={"WWW-Authenticate": "Bearer"},
        )
        await response(scope, receive, send)


def _address(app: "Skilld", body: FeedbackRequest) -> str:
    """The interaction a feedback request names, or a 404."""
    if body.event_id is not None:
        return body.event_id
    redact = app.privacy.redactor.text
    with app.lock:
        if body.completion_id is not None:
            key = autocomplete_key(redact(body.completion_id))
            if not app.store.events_of(key):
                raise Rejected(f"no Continue completion {body.completion_id!r} seen", 404)
            return key
        assert body.session_id is not None and body.prompt is not None
        chat = app.store.find_continue_chat(CHAT_KEY, redact(body.session_id), redact(body.prompt))
    if chat is None:
        raise Rejected("no chat with that session_id and prompt seen", 404)
    return chat
