"""HTTP API over `Assistant`: ask, retrieve, guided sessions, health, rebuild, OpenAI-compatible chat.

Every error, whatever its status, is JSON ``{"error": {"type", "message"}}``; messages never carry
internal exception text (the server log does). The OpenAPI schema at ``/openapi.json`` describes
exactly what the server accepts, and ``/docs`` serves Swagger UI from files bundled in the
``fastapi-offline`` package, so it works without a network.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import secrets
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any, Literal

import anyio
from fastapi import Header, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from fastapi_offline import FastAPIOffline
from pydantic import BaseModel, BeforeValidator, Field, StrictBool
from starlette.exceptions import HTTPException as StarletteHTTPException

from .config import DIST_NAME, Settings
from .errors import (
    AssistantError,
    CorpusError,
    EmbeddingModelError,
    IndexLockedError,
    InvalidQuestionError,
    LLMError,
    StoreError,
)
from .llm import GenerationOptions
from .retrieval import Passage
from .tokens import TokenCounter

if TYPE_CHECKING:
    from .answer import Answer
    from .engine import Assistant
    from .guide import GuideSession

logger = logging.getLogger(__name__)

MODEL_NAME = "assistant"

#: The longest question the API accepts; the schema says so, and the engine checks it again.
MAX_QUESTION = 2000
#: Text parts in one chat message, and characters per part: 4 x 499 + 3 separators stays within
#: `MAX_QUESTION`, so every message the schema allows is a question the engine takes.
MAX_PARTS, MAX_PART_CHARS = 4, 499
#: Some character that is not white space, as Python's ``str.strip`` (and so the engine) reads it.
#: Spelt out rather than ``\S``: JSON Schema (ECMA), pydantic (Rust) and schemathesis (Python)
#: disagree on what ``\s`` holds (U+001C-U+001F, U+0085, U+FEFF), so a text could pass the
#: published schema and fail the server, or the reverse.
NON_BLANK = r"[^\t\n\x0b\x0c\r\x1c-\x1f \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"


@dataclass(frozen=True)
class ApiLimits:
    """Bounds on what one request, or one client, may ask of the server."""

    max_body_bytes: int = 64_000
    #: Chat UIs send the whole conversation on every turn; the engine keeps its most recent turns.
    max_chat_body_bytes: int = 1_000_000
    #: Seconds a client has to send its request body (slow clients are cut off with 408).
    body_timeout: float = 30.0
    #: Seconds a new connection has to send its request headers (see `serve`).
    header_timeout: float = 10.0
    request_timeout: float = 60.0
    #: Seconds kept, after the LLM's budget (``ASSISTANT_LLM_TIMEOUT``), for the extractive fallback.
    fallback_reserve: float = 10.0
    session_ttl: float = 1800.0
    max_sessions: int = 1000
    #: Live guided sessions one client address may hold; its own oldest is dropped beyond this.
    max_sessions_per_client: int = 20
    #: Replies one guided session takes (the dialog needs at most 7 answers, plus corrections).
    max_session_replies: int = 50
    #: Finished rebuild jobs remembered for their status URL.
    max_rebuild_jobs: int = 20


# -- models -----------------------------------------------------------------------------------


def _json_number(value: Any) -> Any:
    """Numbers only: pydantic would read ``true`` as 1 and ``"3"`` as 3, which the schema forbids."""
    if isinstance(value, (bool, str)):
        raise ValueError("Input should be a number")
    return value


#: On a number field: JSON numbers only (``5`` or ``5.0``), never booleans or strings. It goes after
#: the field's bounds, so the schema still states them.
NUMBER_ONLY = BeforeValidator(_json_number)


#: How pydantic names the branch of a union in an error's location ("str", "list[TextPart]").
_UNION_BRANCH = re.compile(r"(?:constrained-)?(?:str|int|float|bool|list\[\w+\])")


class Turn(BaseModel):
    role: Literal["user", "assistant"]
    content: str


class AskRequest(BaseModel):
    question: str = Field(min_length=1, max_length=MAX_QUESTION, pattern=NON_BLANK)
    history: list[Turn] = Field(
        default_factory=list, description="Earlier turns, oldest first; only the most recent 100 are used."
    )


class AskResponse(BaseModel):
    text: str
    citations: list[Passage]
    answerable: bool
    query: str
    note: str | None = None
    backend: str
    truncated: bool = False


class RetrieveRequest(BaseModel):
    question: str = Field(min_length=1, max_length=MAX_QUESTION, pattern=NON_BLANK)
    k: Annotated[int, Field(ge=1, le=50), NUMBER_ONLY] = 5


class RetrieveResponse(BaseModel):
    passages: list[Passage]


class GuideReply(BaseModel):
    text: str = Field(min_length=1, max_length=MAX_QUESTION, pattern=NON_BLANK)


class GuideResponse(BaseModel):
    session_id: str
    step: dict[str, Any]


class Health(BaseModel):
    status: Literal["ok"]
    documents: int
    chunks: int
    generation: int
    store: str


class RebuildJob(BaseModel):
    id: str
    status: Literal["running", "succeeded", "failed"]
    status_url: str
    started_at: float
    finished_at: float | None = None
    report: dict[str, Any] | None = None
    generation: int | None = None
    error: str | None = None


class TextPart(BaseModel):
    type: Literal["text"]
    text: str = Field(min_length=1, max_length=MAX_PART_CHARS, pattern=NON_BLANK)


class SystemMessage(BaseModel):
    role: Literal["system", "developer"]
    content: str | list[TextPart]


class UserMessage(BaseModel):
    role: Literal["user"]
    content: (
        Annotated[str, Field(min_length=1, max_length=MAX_QUESTION, pattern=NON_BLANK)]
        | Annotated[list[TextPart], Field(min_length=1, max_length=MAX_PARTS)]
    ) = Field(description=f"The question: at most {MAX_QUESTION} characters, or up to {MAX_PARTS} text parts.")

    def text(self) -> str:
        return self.content if isinstance(self.content, str) else "\n".join(p.text for p in self.content)


class AssistantMessage(BaseModel):
    role: Literal["assistant"]
    content: str | list[TextPart] | None = None

    def text(self) -> str:
        if self.content is None:
            return ""
        return self.content if isinstance(self.content, str) else "\n".join(p.text for p in self.content)


class StreamOptions(BaseModel):
    include_usage: StrictBool = False


class ResponseFormat(BaseModel):
    type: Literal["text"]


class ChatRequest(BaseModel):
    """OpenAI chat-completions request. Parameters not listed here (``stop``, ``top_p``, ``seed``,
    penalties, ``user``...) are accepted and ignored; ``n`` > 1, tools and non-text response
    formats are refused with 400."""

    model: str = MODEL_NAME
    messages: list[Annotated[SystemMessage | UserMessage | AssistantMessage, Field(discriminator="role")]] = Field(
        min_length=1,
        description="The conversation; the last user message is the question. Any length: "
        "the most recent 100 turns are used.",
        json_schema_extra={"contains": {"type": "object", "properties": {"role": {"const": "user"}}}},
    )
    stream: StrictBool = False
    stream_options: StreamOptions | None = None
    max_tokens: Annotated[int, Field(ge=1, le=32768), NUMBER_ONLY] | None = None
    max_completion_tokens: Annotated[int, Field(ge=1, le=32768), NUMBER_ONLY] | None = None
    temperature: Annotated[float, Field(ge=0, le=2), NUMBER_ONLY] | None = None
    n: Annotated[int, Field(ge=1, le=1), NUMBER_ONLY] | None = Field(default=None, description="Only 1 is supported.")
    tools: list[Any] | None = Field(default=None, max_length=0, description="Tools are not supported.")
    tool_choice: Literal["none"] | None = None
    response_format: ResponseFormat | None = None


class ChatChoiceMessage(BaseModel):
    role: Literal["assistant"]
    content: str


class ChatChoice(BaseModel):
    index: int
    message: ChatChoiceMessage
    finish_reason: Literal["stop", "length"]  # "length": cut to max_tokens


class Usage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class ChatCompletion(BaseModel):
    id: str
    object: Literal["chat.completion"]
    created: int
    model: str
    choices: list[ChatChoice]
    usage: Usage
    citations: list[Passage]
    answerable: bool
    note: str | None = None
    backend: str


class ModelCard(BaseModel):
    id: str
    object: Literal["model"]
    created: int
    owned_by: str


class ModelList(BaseModel):
    object: Literal["list"]
    data: list[ModelCard]


class ErrorBody(BaseModel):
    type: str
    message: str


class ErrorOut(BaseModel):
    error: ErrorBody


def _documented(*statuses: int) -> dict[int | str, dict[str, Any]]:
    descriptions = {
        400: "The body is not valid JSON, or asks for something the engine cannot do",
        401: "Missing or wrong API token",
        403: "Rebuilding over HTTP is off",
        404: "Not found",
        408: "The request body arrived too slowly",
        409: "Conflict: a rebuild is running, or the guided session is over",
        413: "The request body is too large",
        422: "The request is well-formed JSON but invalid",
        429: "Too many guided sessions",
        500: "Unexpected server error",
        503: "The index, corpus or model is unavailable",
        504: "The answer took too long",
    }
    return {s: {"model": ErrorOut, "description": descriptions[s]} for s in statuses}


#: One server-sent event of a streamed chat completion (OpenAPI 3.2 ``itemSchema``).
SSE_EVENT = {
    "type": "object",
    "properties": {
        "event": {"type": "string"},
        "data": {"type": "string", "description": "A JSON `chat.completion.chunk` (or `{error}`), then `[DONE]`."},
    },
    "required": ["data"],
}

#: Statuses any route may answer with.
COMMON_ERRORS = _documented(400, 408, 413, 422, 500, 503, 504)

#: What a 503 says, by error class; the exception text itself goes to the log only.
UNAVAILABLE = (
    (IndexLockedError, "The index is being rebuilt; try again in a moment."),
    (StoreError, "The index cannot be read right now; try again shortly, or rebuild it. The server log has details."),
    (CorpusError, "The corpus cannot be read. The server log has details."),
    (EmbeddingModelError, "The embedding model cannot be loaded. The server log has details."),
    (LLMError, "The language model is misconfigured. The server log has details."),
    (AssistantError, "The service is unavailable right now. The server log has details."),
)


# -- sessions ---------------------------------------------------------------------------------


class SessionsFull(Exception):
    """Every guided-session slot is taken by a live session."""


class SessionOver(Exception):
    """A guided session has taken all the replies it may."""


@dataclass
class _Sessions:
    """Guided sessions by id; entries idle longer than ``ttl`` seconds are dropped.

    One client cannot push out other clients' sessions: beyond ``per_client`` live sessions its own
    oldest goes, and when every slot is live a new session is refused, not made by eviction.
    """

    ttl: float
    limit: int
    per_client: int
    max_replies: int
    _items: dict[str, tuple[float, str, int, GuideSession]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, session: GuideSession, client: str) -> str:
        key = secrets.token_urlsafe(16)
        with self._lock:
            self._expire()
            own = sorted((t, k) for k, (t, c, _, _) in self._items.items() if c == client)
            while len(own) >= self.per_client:
                del self._items[own.pop(0)[1]]
            if len(self._items) >= self.limit:
                raise SessionsFull
            self._items[key] = (time.monotonic(), client, 0, session)
        return key

    def get(self, key: str) -> GuideSession | None:
        """The session for one more reply; raises `SessionOver` when it has had its share."""
        with self._lock:
            self._expire()
            item = self._items.get(key)
            if item is None:
                return None
            _, client, replies, session = item
            if replies >= self.max_replies:
                raise SessionOver
            self._items[key] = (time.monotonic(), client, replies + 1, session)
            return session

    def _expire(self) -> None:
        now = time.monotonic()
        for key in [k for k, (t, *_) in self._items.items() if now - t > self.ttl]:
            del self._items[key]


# -- request bodies ---------------------------------------------------------------------------


def _error_body(status: int, kind: str, message: str) -> bytes:
    return json.dumps({"error": {"type": kind, "message": message}}).encode()


class BodyLimit:
    """ASGI middleware: reads each request body first, counting the bytes actually received.

    A ``Content-Length`` over the limit is refused before reading; a chunked body is refused as soon
    as what arrived passes the limit (413); a body that does not arrive within ``timeout`` seconds
    gets 408. The app then reads the buffered body as usual.
    """

    def __init__(self, app: Any, limit_for: Callable[[str], int], timeout: float) -> None:
        self.app = app
        self.limit_for = limit_for
        self.timeout = timeout

    async def __call__(self, scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        limit = self.limit_for(scope["path"])
        too_large = f"Request bodies are limited to {limit:,} bytes here."
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > limit):
            return await self._reply(send, 413, "body_too_large", too_large)
        chunks, size = [], 0
        try:
            with anyio.fail_after(self.timeout):
                while True:
                    message = await receive()
                    if message["type"] == "http.disconnect":
                        return None
                    body = message.get("body", b"")
                    size += len(body)
                    if size > limit:
                        return await self._reply(send, 413, "body_too_large", too_large)
                    chunks.append(body)
                    if not message.get("more_body", False):
                        break
        except TimeoutError:
            return await self._reply(
                send, 408, "request_timeout", "The request body arrived too slowly; send it again."
            )
        replayed = False

        async def replay() -> dict[str, Any]:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": b"".join(chunks), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)
        return None

    @staticmethod
    async def _reply(send: Callable[..., Any], status: int, kind: str, message: str) -> None:
        body = _error_body(status, kind, message)
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": status, "headers": [*headers, (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": body})


# -- app ----------------------------------------------------------------------------------------


def _error(status: int, kind: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(
        status_code=status, content={"error": {"type": kind, "message": message}}, headers=headers or None
    )


_HTTP_KINDS = {400: "invalid_body", 401: "unauthorized", 403: "forbidden", 404: "not_found", 405: "method_not_allowed"}
#: Request fields that ask for something the engine cannot do: refused with 400, not 422.
UNSUPPORTED = {"n", "tools", "tool_choice", "response_format"}


def create_app(
    assistant_or_factory: Assistant | Callable[[], Assistant],
    settings: Settings | None = None,
    limits: ApiLimits | None = None,
) -> Any:
    """Build the HTTP app.

    Args:
        assistant_or_factory: An open `Assistant`, or a callable that opens one at startup.
        settings: Configuration (API token, LLM budget); the assistant's own when omitted.
        limits: Body sizes, timeouts, session bounds.

    Returns:
        An ASGI app (FastAPI behind the body-limit middleware); serve it with uvicorn.
    """
    limits = limits or ApiLimits()
    state: dict[str, Any] = {}
    opening = threading.Lock()
    sessions = _Sessions(
        limits.session_ttl, limits.max_sessions, limits.max_sessions_per_client, limits.max_session_replies
    )
    jobs: dict[str, dict[str, Any]] = {}
    jobs_lock = threading.Lock()

    def bot() -> Assistant:
        with opening:  # two first requests at once open one assistant, not two
            if "bot" not in state:
                state["bot"] = assistant_or_factory() if callable(assistant_or_factory) else assistant_or_factory
            return state["bot"]

    def cfg() -> Settings:
        return settings or bot().settings

    tokens = TokenCounter(lambda: cfg().embed_model_path)

    def request_timeout() -> float:
        """The LLM budget plus time for the fallback, at least ``limits.request_timeout``."""
        return max(limits.request_timeout, cfg().llm_timeout + limits.fallback_reserve)

    app = FastAPIOffline(
        title="Ask the docs: cited answers",
        version="1.0",
        responses=COMMON_ERRORS,
        description='Cited answers from a document corpus. Every error is `{"error": {"type", "message"}}`.',
    )

    async def run(fn: Callable[..., Any], *args: Any) -> Any:
        try:
            with anyio.fail_after(request_timeout()):
                return await anyio.to_thread.run_sync(lambda: fn(*args), abandon_on_cancel=True)
        except TimeoutError as exc:
            raise HTTPException(
                504, "The answer took too long. Try again; if it keeps happening the server is overloaded."
            ) from exc

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        # A blank text fails our one string pattern (NON_BLANK); among the branches of a union
        # (a message's content is a string or a list of parts), that is the error that says why.
        blank = [e for e in errors if e.get("type") in ("string_pattern_mismatch", "string_too_short")]
        first = blank[0] if blank else errors[0] if errors else {}
        loc = [str(p) for p in first.get("loc", ()) if not _UNION_BRANCH.fullmatch(str(p))]
        if first.get("type") == "json_invalid":
            return _error(400, "invalid_json", "The request body is not valid JSON.")
        if len(loc) > 1 and loc[0] == "body" and loc[1] in UNSUPPORTED:
            return _error(
                400, "unsupported_parameter", f"{loc[1]}: not supported by this server ({first.get('msg', 'invalid')})."
            )
        if blank:
            return _error(422, "invalid_request", f"{'.'.join(loc)}: is empty; send some text.")
        return _error(422, "invalid_request", f"{'.'.join(loc)}: {first.get('msg', 'invalid request')}")

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        kind = _HTTP_KINDS.get(exc.status_code, "timeout" if exc.status_code == 504 else "http_error")
        message = str(exc.detail)
        if exc.status_code == 400 and "parsing the body" in message:
            message = "The request body could not be parsed; send JSON with Content-Type: application/json."
        return _error(exc.status_code, kind, message, headers=getattr(exc, "headers", None))

    @app.exception_handler(InvalidQuestionError)
    async def bad_question(request: Request, exc: InvalidQuestionError) -> JSONResponse:
        return _error(422, "invalid_question", str(exc))

    @app.exception_handler(AssistantError)
    async def assistant_error(request: Request, exc: AssistantError) -> JSONResponse:
        logger.warning("Request to %s failed: %s: %s", request.url.path, type(exc).__name__, exc)
        message = next(text for cls, text in UNAVAILABLE if isinstance(exc, cls))
        return _error(503, "unavailable", message, headers={"Retry-After": "5"})

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        logger.exception("Unexpected error serving %s", request.url.path)
        return _error(500, "internal_error", "The server failed to answer; see its log.")

    def history_of(turns: list[Turn]) -> list[dict[str, str]]:
        return [t.model_dump() for t in turns]  # the engine keeps the most recent turns within its limits

    @app.get("/healthz", response_model=Health)
    async def healthz() -> Health:
        s = await run(lambda: bot().status())
        return Health(status="ok", documents=s.documents, chunks=s.chunks, generation=s.generation, store=s.store)

    @app.post("/v1/ask", response_model=AskResponse)
    async def ask(body: AskRequest) -> dict[str, Any]:
        answer = await run(bot().ask, body.question, history_of(body.history))
        return answer.to_dict()

    @app.post("/v1/retrieve", response_model=RetrieveResponse)
    async def retrieve(body: RetrieveRequest) -> dict[str, Any]:
        passages = await run(bot().retrieve, body.question, body.k)
        return {"passages": [p.to_dict() for p in passages]}

    @app.post("/v1/guide", response_model=GuideResponse, responses=_documented(429))
    async def guide_start(request: Request) -> Any:
        session = await run(bot().guide)
        step = await run(session.restart)
        try:
            key = sessions.add(session, request.client.host if request.client else "?")
        except SessionsFull:
            return _error(
                429, "too_many_sessions", "Too many guided sessions are open; try again later.", {"Retry-After": "60"}
            )
        return {"session_id": key, "step": step.to_dict()}

    @app.post("/v1/guide/{session_id}", response_model=GuideResponse, responses=_documented(404, 409))
    async def guide_reply(session_id: str, body: GuideReply) -> Any:
        try:
            session = sessions.get(session_id)
        except SessionOver:
            return _error(
                409,
                "session_over",
                f"This guided session has taken its {limits.max_session_replies} replies; start one with POST /v1/guide.",
            )
        if session is None:
            raise HTTPException(404, "No such guided session (it may have expired); start one with POST /v1/guide.")
        step = await run(session.reply, body.text)
        return {"session_id": session_id, "step": step.to_dict()}

    # -- rebuild --------------------------------------------------------------------------------

    def authorize(authorization: str | None) -> None:
        token = cfg().api_token
        if not token:
            raise HTTPException(403, "Rebuilding over HTTP is off; set ASSISTANT_API_TOKEN to enable it.")
        # Starlette decodes headers as Latin-1: encoding back gives the bytes sent, whatever they are.
        sent = (authorization or "").encode("latin-1", "replace")
        if not secrets.compare_digest(sent, f"Bearer {token}".encode()):
            raise HTTPException(401, "Send the API token as 'Authorization: Bearer <token>'.")

    def job_view(job: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in job.items() if not k.startswith("_")}

    def run_rebuild(job: dict[str, Any]) -> None:
        try:
            report = bot().refresh(full=True)
            data = report.to_dict() if hasattr(report, "to_dict") else dict(vars(report))
            job.update(
                report=json.loads(json.dumps(data, default=str)),
                generation=bot().status().generation,
                status="succeeded",
            )
        except Exception as exc:
            logger.exception("The rebuild %s failed", job["id"])
            reason = "the index could not be written" if isinstance(exc, StoreError) else type(exc).__name__
            job.update(status="failed", error=f"The rebuild failed ({reason}); the previous index keeps answering.")
        finally:
            job["finished_at"] = time.time()

    @app.post("/v1/index/rebuild", status_code=202, response_model=RebuildJob, responses=_documented(401, 403, 409))
    async def rebuild(authorization: str | None = Header(default=None)) -> Any:
        authorize(authorization)
        with jobs_lock:
            running = next((j for j in jobs.values() if j["status"] == "running"), None)
            if running is not None:
                return _error(409, "rebuild_running", f"A rebuild is already running; follow {running['status_url']}.")
            ident = uuid.uuid4().hex
            job = {
                "id": ident,
                "status": "running",
                "status_url": f"/v1/index/rebuild/{ident}",
                "started_at": time.time(),
                "finished_at": None,
                "report": None,
                "generation": None,
                "error": None,
            }
            jobs[ident] = job
            for old in [k for k, j in jobs.items() if j["status"] != "running"][: -limits.max_rebuild_jobs]:
                del jobs[old]
        threading.Thread(target=run_rebuild, args=(job,), name=f"rebuild-{ident[:8]}", daemon=True).start()
        return JSONResponse(status_code=202, content=job_view(job), headers={"Location": job["status_url"]})

    @app.get("/v1/index/rebuild/{job_id}", response_model=RebuildJob, responses=_documented(401, 403, 404))
    async def rebuild_status(job_id: str, authorization: str | None = Header(default=None)) -> Any:
        authorize(authorization)
        job = jobs.get(job_id)
        if job is None:
            raise HTTPException(404, "No such rebuild; start one with POST /v1/index/rebuild.")
        return job_view(job)

    # -- OpenAI-compatible ----------------------------------------------------------------------

    def model_list() -> dict[str, Any]:
        return {"object": "list", "data": [{"id": MODEL_NAME, "object": "model", "created": 0, "owned_by": DIST_NAME}]}

    @app.get("/v1/models", response_model=ModelList)
    async def models() -> dict[str, Any]:
        return model_list()

    @app.get("/v1/models/{model_id}", response_model=ModelCard, responses=_documented(404))
    async def model(model_id: str) -> dict[str, Any]:
        if model_id != MODEL_NAME:
            raise HTTPException(404, f"No model {model_id!r}; this server has one model, {MODEL_NAME!r}.")
        return model_list()["data"][0]

    def conversation(body: ChatRequest) -> tuple[str, list[dict[str, str]]]:
        """The question (the last user message) and the turns before it; system messages are not used."""
        turns = [m for m in body.messages if not isinstance(m, SystemMessage)]
        last = max(i for i, m in enumerate(turns) if isinstance(m, UserMessage))
        history = [{"role": m.role, "content": m.text()} for m in turns[:last]]
        return turns[last].text(), history  # type: ignore[union-attr]

    def usage(body: ChatRequest, text: str) -> dict[str, int]:
        prompt = sum(tokens.count(m.text() if not isinstance(m, SystemMessage) else "") for m in body.messages)
        completion = tokens.count(text)
        return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}

    def finish_reason(answer: Answer) -> str:
        return "length" if answer.truncated else "stop"

    def shown_text(answer: Answer) -> str:
        return f"*{answer.note}*\n\n{answer.text}" if answer.note else answer.text

    @app.post(
        "/v1/chat/completions",
        response_model=ChatCompletion,
        responses={
            200: {
                "description": "The answer; with `stream: true`, server-sent events of `chat.completion.chunk` "
                "objects ending with `data: [DONE]`.",
                "content": {"text/event-stream": {"itemSchema": SSE_EVENT}},
            }
        },
    )
    async def chat(body: ChatRequest) -> Any:
        if not any(isinstance(m, UserMessage) for m in body.messages):
            raise InvalidQuestionError("Send at least one user message: the last one is the question.")
        question, history = conversation(body)
        options = GenerationOptions(body.max_completion_tokens or body.max_tokens, body.temperature)
        ident, created = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())
        if not body.stream:
            answer = await run(lambda: bot().answers.ask(question, history, options))
            text = shown_text(answer)
            return {
                "id": ident,
                "object": "chat.completion",
                "created": created,
                "model": MODEL_NAME,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": text},
                        "finish_reason": finish_reason(answer),
                    }
                ],
                "usage": await run(usage, body, text),
                "citations": [p.to_dict() for p in answer.citations],
                "answerable": answer.answerable,
                "note": answer.note,
                "backend": answer.backend,
            }
        return await stream_chat(body, question, history, options, ident, created)

    async def stream_chat(
        body: ChatRequest,
        question: str,
        history: list[dict[str, str]],
        options: GenerationOptions,
        ident: str,
        created: int,
    ) -> StreamingResponse:
        from .answer import StreamNotice

        deadline = time.monotonic() + request_timeout()
        pieces: Iterator[str | Answer] = await run(lambda: iter(bot().answers.stream(question, history, options)))
        done = object()

        async def next_piece() -> Any:
            with anyio.fail_after(max(0.0, deadline - time.monotonic())):
                # Not abandoned on cancel: the generator is closed (stopping its LLM call) only once idle.
                return await anyio.to_thread.run_sync(next, pieces, done)

        first = await next_piece()  # condensing, retrieval and the refusal decision: errors still get a status

        def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> str:
            data = {
                "id": ident,
                "object": "chat.completion.chunk",
                "created": created,
                "model": MODEL_NAME,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
                **extra,
            }
            return f"data: {json.dumps(data)}\n\n"

        async def events() -> AsyncIterator[str]:
            piece, text = first, []
            try:
                yield chunk({"role": "assistant", "content": ""})
                while piece is not done:
                    if isinstance(piece, str):
                        text.append(piece)
                        extra = (
                            {"notice": {"note": piece.note, "retracts": piece.retracts}}
                            if isinstance(piece, StreamNotice)
                            else {}
                        )
                        yield chunk({"content": str(piece)}, **extra)
                    else:
                        final: Answer = piece
                        yield chunk(
                            {},
                            finish_reason(final),
                            citations=[p.to_dict() for p in final.citations],
                            answerable=final.answerable,
                            note=final.note,
                            backend=final.backend,
                        )
                        if body.stream_options and body.stream_options.include_usage:
                            counts = await anyio.to_thread.run_sync(usage, body, "".join(text))
                            yield f"data: {json.dumps({'id': ident, 'object': 'chat.completion.chunk', 'created': created, 'model': MODEL_NAME, 'choices': [], 'usage': counts})}\n\n"
                    piece = await next_piece()
            except TimeoutError:
                yield f"data: {json.dumps({'error': {'type': 'timeout', 'message': 'The answer took too long; it is incomplete.'}})}\n\n"
            except AssistantError as exc:
                logger.warning("Streaming an answer failed: %s: %s", type(exc).__name__, exc)
                message = next(m for cls, m in UNAVAILABLE if isinstance(exc, cls))
                yield f"data: {json.dumps({'error': {'type': 'unavailable', 'message': message}})}\n\n"
            finally:
                close = getattr(pieces, "close", None)
                if close is not None:
                    with anyio.CancelScope(shield=True):
                        await anyio.to_thread.run_sync(close)
            yield "data: [DONE]\n\n"

        return StreamingResponse(events(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})

    def limit_for(path: str) -> int:
        return limits.max_chat_body_bytes if path == "/v1/chat/completions" else limits.max_body_bytes

    app.add_middleware(BodyLimit, limit_for=limit_for, timeout=limits.body_timeout)
    return app


def serve(settings: Settings | None = None, host: str = "127.0.0.1", port: int = 8000) -> None:
    """Open the assistant and serve the HTTP API until interrupted.

    Connections that do not send their request headers within `ApiLimits.header_timeout` seconds
    are closed, and idle keep-alive connections after 5 s, so slow clients cannot hold sockets.
    """
    import uvicorn

    from .engine import Assistant

    settings = settings or Settings.from_env()
    limits = ApiLimits()
    app = create_app(Assistant.open(settings), settings, limits)
    uvicorn.run(
        app,
        host=host,
        port=port,
        log_level="info",
        http=header_timeout_protocol(limits.header_timeout),
        timeout_keep_alive=5,
    )


def header_timeout_protocol(seconds: float) -> type[asyncio.Protocol]:
    """uvicorn's h11 protocol, closing connections whose request headers take longer than ``seconds``."""
    from uvicorn.protocols.http.h11_impl import H11Protocol

    class HeaderTimeoutProtocol(H11Protocol):
        _header_timer: asyncio.TimerHandle | None = None

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._header_timer = self.loop.call_later(seconds, self._headers_too_slow)

        def handle_events(self) -> None:
            super().handle_events()
            if self.cycle is not None and self._header_timer is not None:
                self._header_timer.cancel()  # a request's headers arrived
                self._header_timer = None

        def connection_lost(self, exc: Exception | None) -> None:
            if self._header_timer is not None:
                self._header_timer.cancel()
            super().connection_lost(exc)

        def _headers_too_slow(self) -> None:
            self._header_timer = None
            if self.cycle is None and not self.transport.is_closing():
                self.transport.close()

    return HeaderTimeoutProtocol
