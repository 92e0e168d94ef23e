"""The FastAPI application: routers per resource, JSON errors, body limit, persistence."""

from __future__ import annotations

import asyncio
import json
import os
import re
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from sqlalchemy.exc import IntegrityError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from isosched import __version__
from isosched.errors import IsoschedError
from isosched.io.bounded_json import check_json_text
from isosched.match.placer import warm as warm_placer
from service import dashboard
from service.local_runner import LocalRunner
from service.openapi import ErrorBody
from service.quota import QuotaExceeded
from service.routers import graphs, hardware, jobs, match, models, traces
from service.runner import Runner, RunnerBusy
from service.settings import Settings
from service.store import Store

__all__ = ["DEMO_TRACE_ID", "app_factory", "create_app"]

#: Id of the ad_urban seed-7 trace stored by ``--demo``.
DEMO_TRACE_ID = "demo-ad_urban-s7"


class HeadAsGet:
    """Answer ``HEAD`` wherever ``GET`` is served (RFC 9110): the GET's status and headers.

    No body is sent. An event stream (``…/events``) never ends while its job runs, so it stays
    GET only.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] != "HEAD"
            or str(scope.get("path", "")).endswith("/events")
        ):
            await self.app(scope, receive, send)
            return

        async def headers_only(message: Message) -> None:
            if message["type"] == "http.response.body":
                if not message.get("more_body", False):
                    await send({"type": "http.response.body", "body": b""})
                return
            await send(message)

        await self.app({**scope, "method": "GET"}, receive, headers_only)


class BodyLimit:
    """Answer 413 when a request body exceeds ``limit`` bytes (declared or streamed)."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers", [])).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await _too_large(send, self.limit)
            return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            msg = await receive()
            if msg["type"] == "http.request":
                seen += len(msg.get("body", b""))
                if seen > self.limit:
                    raise _BodyTooLarge
            return msg

        try:
            await self.app(scope, counted, send)
        except _BodyTooLarge:
            await _too_large(send, self.limit)


class _BodyTooLarge(Exception):
    pass


async def _send_error(send: Send, status: int, detail: str) -> None:
    body = json.dumps({"detail": detail}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def _too_large(send: Send, limit: int) -> None:
    await _send_error(send, 413, f"request body exceeds {limit} bytes")


#: Content types that must be UTF-8 text (JSON, JSON Lines; no type at all means JSON).
_TEXT_TYPES = (
    b"",
    b"application/json",
    b"application/x-ndjson",
    b"application/jsonl",
    b"text/plain",
)

#: Bodies larger than this are checked by :class:`JsonGuard` in a thread, off the event loop.
_GUARD_INLINE_BYTES = 1 << 20


class JsonGuard:
    """Answer 422 for a JSON or JSON Lines body that is not UTF-8, too deep or with huge numbers.

    Runs before any parser sees the body, the ones of FastAPI's request models included, so
    that no body can raise ``RecursionError`` or an integer-conversion error in a route
    (:func:`isosched.io.bounded_json.check_json_text`; ONNX bodies pass through).
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = dict(scope.get("headers", [])) if scope["type"] == "http" else {}
        ctype = headers.get(b"content-type", b"").split(b";")[0].strip().lower()
        if (
            scope["type"] != "http"
            or scope["method"] not in ("POST", "PUT", "PATCH")
            or ctype in (b"application/onnx", b"application/octet-stream")
        ):
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        while True:
            msg = await receive()
            if msg["type"] != "http.request":
                await self.app(scope, receive, send)
                return
            chunks.append(msg.get("body", b""))
            if not msg.get("more_body", False):
                break
        body = b"".join(chunks)
        try:
            if ctype in _TEXT_TYPES:
                try:
                    body.decode("utf-8")
                except UnicodeDecodeError as exc:
                    raise IsoschedError(f"request body is not UTF-8 text: {exc.reason}") from None
            if len(body) > _GUARD_INLINE_BYTES:
                await asyncio.to_thread(check_json_text, body, "request body")
            else:
                check_json_text(body, "request body")
        except IsoschedError as exc:
            await _send_error(send, 422, str(exc))
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


def _keep_alive(store: Store, stop: threading.Event, every_s: float = 10.0) -> None:
    """Heartbeat this instance and fail jobs of instances that stopped beating (crashed)."""
    while not stop.wait(every_s):
        try:
            store.heartbeat()
            store.recover()
        except Exception:  # the database went away (tests, shutdown): stop quietly
            return


def _wants_html(request: Request) -> bool:
    """A browser asking for a dashboard page (not the JSON API)."""
    path = request.url.path
    api = path.startswith(("/v1/", "/static/", "/openapi", "/docs", "/healthz"))
    return not api and "text/html" in request.headers.get("accept", "")


def _allowed_methods(app: FastAPI, path: str) -> str | None:
    """The methods the OpenAPI document gives the resource at ``path`` (a 405's ``Allow``).

    ``None`` for paths it does not describe (dashboard pages keep Starlette's answer).
    """
    for template, ops in app.openapi().get("paths", {}).items():
        parts = [re.escape(p) for p in re.split(r"\{[^/{}]+\}", template)]
        if re.fullmatch("[^/]+".join(parts), path):
            return ", ".join(sorted(m.upper() for m in ops))
    return None


def _openapi_schema(app: FastAPI) -> dict[str, Any]:
    """The OpenAPI document, its 422 answers described as they are: an :class:`ErrorBody`.

    FastAPI declares its own validation-error shape (``detail`` as an array) on every operation
    with parameters; this service answers every error with ``{"detail": "..."}``.
    """
    if app.openapi_schema is None:
        doc = get_openapi(
            title=app.title,
            version=app.version,
            description=app.description,
            routes=app.routes,
        )
        error = {"$ref": "#/components/schemas/ErrorBody"}
        for ops in doc.get("paths", {}).values():
            for op in ops.values():
                answer = op.get("responses", {}).get("422")
                if answer is not None:
                    answer["content"] = {"application/json": {"schema": error}}
        schemas = doc.setdefault("components", {}).setdefault("schemas", {})
        schemas["ErrorBody"] = ErrorBody.model_json_schema()
        for unused in ("HTTPValidationError", "ValidationError"):
            schemas.pop(unused, None)
        app.openapi_schema = doc
    return app.openapi_schema


#: The demo sweep: ad_urban's first 2 s at these load scales (one seed).
DEMO_SWEEP_HORIZON_MS = 2000
DEMO_SWEEP_SCALES = (4.0, 8.0, 12.0, 16.0)  # all meet every deadline at x4; apart from x8


def seed_demo(store: Store, runner: Runner) -> str | None:
    """Queue the demo: the ad_urban seed-7 replay and a sweep of its load, unless already there.

    The replay runs every policy on the stored trace; the sweep (2 s of ad_urban, ×4 to ×16, one
    seed) gives the home page its LBT curves. Returns the replay job id (``None`` when a replay
    of ad_urban is stored already).
    """
    from isosched.sim.policies import POLICY_NAMES
    from isosched.trace import generate_trace, parse_scenario
    from service.routers.traces import scenario_doc, trace_text
    from service.work import replay_job, sweep_job

    if any(t["name"] == "ad_urban" for t in store.list_traces()):
        return None
    trace = generate_trace(parse_scenario(scenario_doc("ad_urban")), seed=7)
    text = trace_text(trace)
    models = sorted({j.model for j in trace.jobs})
    try:  # one id: when several API processes start together, one of them seeds
        store.add_trace(
            "ad_urban", trace.header, text, tid=DEMO_TRACE_ID, models=models, jobs=len(trace.jobs)
        )
    except IntegrityError:
        return None
    params = {"trace_id": DEMO_TRACE_ID, "hw": "edge-8x8", "policies": list(POLICY_NAMES)}
    replay_id = runner.submit("replay", replay_job, params)
    # A short horizon keeps the demo sweep small (28 points of 1,188 to 4,755 jobs and 21
    # bisection points: 76 s on two cores); the scenario keeps its name, so the home page files
    # its curves under ad_urban.
    short = {**scenario_doc("ad_urban"), "horizon_ms": DEMO_SWEEP_HORIZON_MS}
    sweep = {
        "scenario": short,
        "hw": "edge-8x8",
        "policies": list(POLICY_NAMES),
        "scales": list(DEMO_SWEEP_SCALES),
        "seeds": 1,
    }
    runner.submit("sweep", sweep_job, sweep)
    return replay_id


def app_factory() -> FastAPI:
    """The app for ``uvicorn --factory`` with several API processes (``isosched serve``).

    Settings come from the environment, ``ISOSCHED_DEMO=1`` asks for the demo (a replay and a
    sweep), and the processes never fail pending jobs at start-up: ``isosched serve`` did that
    once before starting them, and a sibling's running job must not be failed by a process that
    starts later.
    """
    return create_app(demo=os.environ.get("ISOSCHED_DEMO") == "1", recover=False)


def create_app(
    settings: Settings | None = None, demo: bool = False, recover: bool = True
) -> FastAPI:
    """Build the application (one store per app; tests pass their own settings).

    With ``demo``, the ad_urban replay and sweep are queued at start-up unless stored already. With
    ``recover``, jobs a previous process left queued or running are marked failed.
    """
    cfg = settings or Settings.from_env()
    store = Store(cfg.database_url, recover=recover)
    store.register()
    stop = threading.Event()
    threading.Thread(
        target=_keep_alive, args=(store, stop), name="isosched-heartbeat", daemon=True
    ).start()
    runner: Runner
    if cfg.ray_address:
        from service.ray_runner import RayRunner

        runner = RayRunner(store, cfg.ray_address, max_pending=cfg.max_pending)
    else:
        runner = LocalRunner(
            store,
            workers=cfg.workers,
            max_pending=cfg.max_pending,
            job_timeout_s=cfg.job_timeout_s,
        )

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if cfg.warm_workers:
            await asyncio.to_thread(runner.warm)
            # /v1/match runs in this process: load its compiled kernels now, in the background
            # (a new checkout compiles them, about 30 s), not in the first request
            threading.Thread(target=warm_placer, name="isosched-warm-placer", daemon=True).start()
        if demo:
            seed_demo(store, runner)
        yield
        stop.set()
        runner.shutdown()
        graphs.shutdown_parser()
        store.unregister()

    app = FastAPI(
        title="isosched",
        version=__version__,
        description="Preemptive multi-DNN scheduling for tile-spatial accelerators.",
        lifespan=lifespan,
        docs_url=None,  # served below from vendored Swagger UI files (works offline)
        redoc_url=None,
    )
    app.state.settings = cfg
    app.state.store = store
    app.state.runner = runner
    app.openapi = lambda: _openapi_schema(app)  # type: ignore[method-assign]

    @app.exception_handler(IsoschedError)
    async def _bad_input(_request: Request, exc: IsoschedError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=422)

    @app.exception_handler(QuotaExceeded)
    async def _full(_request: Request, exc: QuotaExceeded) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=413)

    @app.exception_handler(RunnerBusy)
    async def _busy(_request: Request, exc: RunnerBusy) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=429, headers={"Retry-After": "5"})

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> Response:
        errs = exc.errors()
        first: dict[str, Any] = errs[0] if errs else {}
        more = f" (and {len(errs) - 1} more errors)" if len(errs) > 1 else ""
        if first.get("type") == "json_invalid":  # the body is not JSON: say where it breaks
            loc = first.get("loc", ())
            at = f" (char {loc[-1]})" if len(loc) > 1 else ""
            why = first.get("ctx", {}).get("error", "JSON decode error")
            return JSONResponse({"detail": f"request body is not valid JSON: {why}{at}"}, 422)
        where = ".".join(str(p) for p in first.get("loc", ()))
        detail = f"{where}: {first.get('msg', 'invalid')}{more}"
        if _wants_html(request):  # a dashboard page with a bad query value
            return dashboard.error_page(request, 422, detail)
        return JSONResponse({"detail": detail}, 422)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        if _wants_html(request):
            return dashboard.error_page(request, exc.status_code, str(exc.detail))
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            allowed = _allowed_methods(app, request.url.path)
            if allowed and request.method not in allowed.split(", "):  # routing's 405
                headers["Allow"] = allowed
        return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=headers)

    @app.get("/healthz", tags=["health"])
    async def healthz() -> dict[str, str]:
        """Liveness: the process answers."""
        return {"status": "ok", "version": __version__}

    @app.get("/docs", include_in_schema=False)
    async def api_docs() -> HTMLResponse:
        """Swagger UI over /openapi.json, from the vendored files (no CDN)."""
        vendor = "/static/vendor/swagger-ui"
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title="isosched API",
            swagger_js_url=f"{vendor}/swagger-ui-bundle.js",
            swagger_css_url=f"{vendor}/swagger-ui.css",
            swagger_favicon_url=f"{vendor}/favicon-32x32.png",
        )

    app.include_router(dashboard.router)
    app.mount("/static", StaticFiles(directory=dashboard.STATIC_DIR), name="static")
    app.include_router(graphs.router)
    app.include_router(hardware.router)
    app.include_router(models.router)
    app.include_router(traces.router)
    app.include_router(jobs.router)
    app.include_router(match.router)
    app.add_middleware(JsonGuard)
    app.add_middleware(HeadAsGet)
    app.add_middleware(BodyLimit, limit=cfg.max_body_bytes)  # outermost: bounds the guard too
    return app
