"""HTTP API over `Assistant`: ask, retrieve, guided sessions, health, rebuild, OpenAI-compatible chat."""

from __future__ import annotations

import json
import logging
import secrets
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import anyio
from fastapi import FastAPI, Header, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, Field

from .config import Settings
from .errors import AssistantError, InvalidQuestionError
from .retrieval import Passage

if TYPE_CHECKING:
    from .engine import Assistant
    from .guide import GuideSession

logger = logging.getLogger(__name__)

MODEL_NAME = "assistant"


@dataclass(frozen=True)
class ApiLimits:
    """Bounds on what one request may ask of the server."""

    max_body_bytes: int = 64_000
    max_history: int = 20
    request_timeout: float = 60.0
    session_ttl: float = 1800.0
    max_sessions: int = 1000


# -- models -----------------------------------------------------------------------------------


class Turn(BaseModel):
    role: Literal["user", "assistant"]
    content: str = Field(max_length=8000)


class AskRequest(BaseModel):
    question: str = Field(min_length=1, max_length=2000)
    history: list[Turn] = Field(default_factory=list, max_length=20)


class AskResponse(BaseModel):
    text: str
    citations: list[Passage]
    answerable: bool
    query: str
    note: str | None = None
    backend: str


class RetrieveRequest(BaseModel):
    question: str = Field(min_length=1, max_length=2000)
    k: int = Field(default=5, ge=1, le=50)


class RetrieveResponse(BaseModel):
    passages: list[Passage]


class GuideReply(BaseModel):
    text: str = Field(min_length=1, max_length=2000)


class GuideResponse(BaseModel):
    session_id: str
    step: dict[str, Any]


class Health(BaseModel):
    status: Literal["ok"]
    documents: int
    chunks: int
    generation: int
    store: str


class RebuildResponse(BaseModel):
    report: dict[str, Any]
    generation: int


class ChatMessage(BaseModel):
    role: Literal["system", "user", "assistant"]
    content: str = Field(max_length=8000)


class ChatRequest(BaseModel):
    model: str = MODEL_NAME
    messages: list[ChatMessage] = Field(min_length=1, max_length=21)
    stream: bool = False


class ErrorOut(BaseModel):
    error: dict[str, str]


# -- sessions ---------------------------------------------------------------------------------


@dataclass
class _Sessions:
    """Guided sessions by id; entries idle longer than ``ttl`` seconds are dropped."""

    ttl: float
    limit: int
    _items: dict[str, tuple[float, GuideSession]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, session: GuideSession) -> str:
        key = secrets.token_urlsafe(16)
        with self._lock:
            self._expire()
            if len(self._items) >= self.limit:
                oldest = min(self._items, key=lambda k: self._items[k][0])
                del self._items[oldest]
            self._items[key] = (time.monotonic(), session)
        return key

    def get(self, key: str) -> GuideSession | None:
        with self._lock:
            self._expire()
            item = self._items.get(key)
            if item is None:
                return None
            self._items[key] = (time.monotonic(), item[1])
            return item[1]

    def _expire(self) -> None:
        now = time.monotonic()
        for key in [k for k, (t, _) in self._items.items() if now - t > self.ttl]:
            del self._items[key]


# -- app ----------------------------------------------------------------------------------------


def _error(status: int, kind: str, message: str) -> JSONResponse:
    return JSONResponse(status_code=status, content={"error": {"type": kind, "message": message}})


def create_app(
    assistant_or_factory: Assistant | Callable[[], Assistant],
    settings: Settings | None = None,
    limits: ApiLimits | None = None,
) -> FastAPI:
    """Build the HTTP app.

    Args:
        assistant_or_factory: An open `Assistant`, or a callable that opens one at startup.
        settings: Configuration (API token, question length); the assistant's own when omitted.
        limits: Body size, history length, timeout and session expiry.

    Returns:
        A FastAPI app; serve it with uvicorn.
    """
    limits = limits or ApiLimits()
    state: dict[str, Any] = {}
    sessions = _Sessions(limits.session_ttl, limits.max_sessions)
    rebuild_lock = threading.Lock()

    def bot() -> Assistant:
        if "bot" not in state:
            state["bot"] = assistant_or_factory() if callable(assistant_or_factory) else assistant_or_factory
        return state["bot"]

    def cfg() -> Settings:
        return settings or bot().settings

    app = FastAPI(title="Prompt engineering vs fine-tuning assistant", version="1.0")

    async def run(fn: Callable[..., Any], *args: Any) -> Any:
        try:
            with anyio.fail_after(limits.request_timeout):
                return await anyio.to_thread.run_sync(lambda: fn(*args), abandon_on_cancel=True)
        except TimeoutError as exc:
            raise HTTPException(504, "The request took too long; try a shorter question.") from exc

    @app.middleware("http")
    async def limit_body(request: Request, call_next: Callable[..., Any]) -> Any:
        length = request.headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > limits.max_body_bytes):
            return _error(413, "body_too_large", f"Request bodies are limited to {limits.max_body_bytes} bytes.")
        return await call_next(request)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()))
        return _error(422, "invalid_request", f"{where}: {first.get('msg', 'invalid request')}")

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        return _error(exc.status_code, "http_error", str(exc.detail))

    @app.exception_handler(InvalidQuestionError)
    async def bad_question(request: Request, exc: InvalidQuestionError) -> JSONResponse:
        return _error(422, "invalid_question", str(exc))

    @app.exception_handler(AssistantError)
    async def assistant_error(request: Request, exc: AssistantError) -> JSONResponse:
        logger.warning("Request failed: %s", exc)
        return _error(503, type(exc).__name__, str(exc))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        logger.exception("Unexpected error serving %s", request.url.path)
        return _error(500, "internal_error", "The server failed to answer; see its log.")

    def history_of(turns: list[Turn]) -> list[dict[str, str]]:
        if len(turns) > limits.max_history:
            raise InvalidQuestionError(f"Send at most {limits.max_history} history turns.")
        return [t.model_dump() for t in turns]

    @app.get("/healthz", response_model=Health)
    async def healthz() -> Health:
        s = await run(lambda: bot().status())
        return Health(status="ok", documents=s.documents, chunks=s.chunks, generation=s.generation, store=s.store)

    @app.post("/v1/ask", response_model=AskResponse, responses={422: {"model": ErrorOut}})
    async def ask(body: AskRequest) -> dict[str, Any]:
        answer = await run(bot().ask, body.question, history_of(body.history))
        return answer.to_dict()

    @app.post("/v1/retrieve", response_model=RetrieveResponse, responses={422: {"model": ErrorOut}})
    async def retrieve(body: RetrieveRequest) -> dict[str, Any]:
        passages = await run(bot().retrieve, body.question, body.k)
        return {"passages": [p.to_dict() for p in passages]}

    @app.post("/v1/guide", response_model=GuideResponse)
    async def guide_start() -> dict[str, Any]:
        session = await run(bot().guide)
        step = await run(session.restart)
        return {"session_id": sessions.add(session), "step": step.to_dict()}

    @app.post("/v1/guide/{session_id}", response_model=GuideResponse, responses={404: {"model": ErrorOut}})
    async def guide_reply(session_id: str, body: GuideReply) -> dict[str, Any]:
        session = sessions.get(session_id)
        if session is None:
            raise HTTPException(404, "No such guided session (it may have expired); start one with POST /v1/guide.")
        step = await run(session.reply, body.text)
        return {"session_id": session_id, "step": step.to_dict()}

    @app.post("/v1/index/rebuild", response_model=RebuildResponse, responses={403: {"model": ErrorOut}})
    async def rebuild(authorization: str | None = Header(default=None)) -> dict[str, Any]:
        token = cfg().api_token
        if not token:
            raise HTTPException(403, "Rebuilding over HTTP is off; set ASSISTANT_API_TOKEN to enable it.")
        if not authorization or not secrets.compare_digest(authorization, f"Bearer {token}"):
            raise HTTPException(401, "Send the API token as 'Authorization: Bearer <token>'.")
        if not rebuild_lock.acquire(blocking=False):
            raise HTTPException(409, "A rebuild is already running; try again when it ends.")
        try:
            # A rebuild may take longer than a question; it gets its own thread, untimed.
            report = await anyio.to_thread.run_sync(lambda: bot().refresh(full=True))
        finally:
            rebuild_lock.release()
        data = report.to_dict() if hasattr(report, "to_dict") else dict(vars(report))
        return {"report": json.loads(json.dumps(data, default=str)), "generation": bot().status().generation}

    @app.post("/v1/chat/completions", responses={422: {"model": ErrorOut}})
    async def chat(body: ChatRequest) -> Any:
        turns = [m for m in body.messages if m.role != "system"]
        if not turns or turns[-1].role != "user":
            raise InvalidQuestionError("The last message must be the user's question.")
        question = turns[-1].content
        history = history_of([Turn(role=m.role, content=m.content) for m in turns[:-1]])  # type: ignore[arg-type]
        ident = f"chatcmpl-{uuid.uuid4().hex}"
        created = int(time.time())
        if not body.stream:
            answer = await run(bot().ask, question, history)
            return {
                "id": ident,
                "object": "chat.completion",
                "created": created,
                "model": MODEL_NAME,
                "choices": [
                    {"index": 0, "message": {"role": "assistant", "content": answer.text}, "finish_reason": "stop"}
                ],
                "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
                "citations": [p.to_dict() for p in answer.citations],
                "answerable": answer.answerable,
            }
        pieces = await run(lambda: list(bot().stream(question, history)))

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

        def events() -> Iterator[str]:
            yield chunk({"role": "assistant"})
            final = None
            for piece in pieces:
                if isinstance(piece, str):
                    yield chunk({"content": piece})
                else:
                    final = piece
            extra = (
                {}
                if final is None
                else {"citations": [p.to_dict() for p in final.citations], "answerable": final.answerable}
            )
            yield chunk({}, "stop", **extra)
            yield "data: [DONE]\n\n"

        return StreamingResponse(events(), media_type="text/event-stream")

    return app


def serve(settings: Settings | None = None, host: str = "127.0.0.1", port: int = 8000) -> None:
    """Open the assistant and serve the HTTP API until interrupted."""
    import uvicorn

    from .engine import Assistant

    settings = settings or Settings.from_env()
    app = create_app(Assistant.open(settings), settings)
    uvicorn.run(app, host=host, port=port, log_level="info")
