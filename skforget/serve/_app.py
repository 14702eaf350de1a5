"""HTTP routes for :class:`~skforget.serve.ForgetService` (FastAPI).

FastAPI is imported when an application is built, so that this module (and
:mod:`skforget.serve`) imports without the ``serve`` extra.
"""

import asyncio
import hmac
import json
import logging
import time
from urllib.parse import parse_qs

from skforget.serve._service import MAX_IDS, MAX_ROWS, BadRequest, ServiceError

logger = logging.getLogger("skforget.serve")

MAX_BODY_BYTES = 16 * 2**20  # a request body larger than this gets 413


class _AccessLog:
    """ASGI middleware: one log line per request (method, path, status, time).

    Also refuses bodies declared larger than ``max_body_bytes`` (413). Pure
    ASGI rather than Starlette's ``BaseHTTPMiddleware``, which costs a task
    per request.
    """

    def __init__(self, app, max_body_bytes=MAX_BODY_BYTES):
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        start = time.perf_counter()
        status = 500

        async def send_logged(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            for name, value in scope["headers"]:
                if name == b"content-length" and int(value) > self.max_body_bytes:
                    status = 413
                    return await _plain(send, 413, b"request body too large")
            await self.app(scope, receive, send_logged)
        finally:
            if logger.isEnabledFor(logging.INFO):
                client = scope.get("client") or ("-", 0)
                logger.info("%s %s %s %d %.2fms", client[0], scope["method"],
                            scope["path"], status, (time.perf_counter() - start) * 1e3)


class _DeletionsFirst:
    """ASGI middleware: while a ``/forget`` request is in flight, saves pause.

    From the request's first byte to its answer's last, the service's
    background save waits at its next write (briefly: see
    :class:`~skforget.serve.ForgetService`), so that the receipt does not
    share the interpreter with it. Not for a request that waits for the
    save itself (``?wait=persisted``, or the service's default).
    """

    def __init__(self, app, service):
        self.app, self.service = app, service

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["path"] != "/forget" or self._waits_for_save(scope):
            return await self.app(scope, receive, send)
        with self.service._deleting():
            await self.app(scope, receive, send)

    def _waits_for_save(self, scope):
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        return query.get("wait", [self.service._default_wait])[-1] == "persisted"


async def _plain(send, status, body):
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"text/plain"),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


class _Batcher:
    """Answers the prediction requests that arrive together with one model call.

    A request waits for the event loop's next turn; every request that
    reached the batcher by then is answered by one
    :meth:`~skforget.serve.ForgetService.predict_batch` call, from one model
    version. Under load this spreads the estimator's fixed cost per call
    (input validation) over many requests; alone, a request waits one loop
    turn.
    """

    def __init__(self, service):
        self.service = service
        self.waiting = []

    async def predict(self, X, proba):
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        if not self.waiting:
            loop.call_soon(self._flush)
        self.waiting.append((X, proba, future))
        result = await future
        if isinstance(result, ServiceError):
            raise result
        return result

    def _flush(self):
        batch, self.waiting = self.waiting, []
        try:
            results = self.service.predict_batch([(X, proba) for X, proba, _ in batch])
        except Exception as exc:  # noqa: BLE001 - every waiting request learns of it
            results = [exc] * len(batch)
        for (_, _, future), result in zip(batch, results):
            if future.done():  # the client went away
                continue
            if isinstance(result, Exception) and not isinstance(result, ServiceError):
                future.set_exception(result)
            else:
                future.set_result(result)


class _Unauthorized(ServiceError):
    status = 401


def create_app(service, *, token=None, max_body_bytes=MAX_BODY_BYTES):
    """A FastAPI application serving ``service``.

    Parameters
    ----------
    service : ForgetService
        The model, journal and record ids to serve.
    token : str, default=None
        When given, ``/forget`` and ``/audit`` require the header
        ``Authorization: Bearer <token>`` (401 otherwise).
    max_body_bytes : int, default=16 MiB
        Larger request bodies get 413.

    Returns
    -------
    app : fastapi.FastAPI
        ``POST /predict``, ``POST /forget``, ``GET /audit``, ``GET /health``,
        with a middleware that logs each request with its duration.

    Examples
    --------
    >>> import os, tempfile
    >>> from skforget.io import dump
    >>> from skforget.naive_bayes import GaussianNB
    >>> from skforget.serve import ForgetService, create_app
    >>> path = os.path.join(tempfile.mkdtemp(), "model.skops")
    >>> dump(GaussianNB().fit([[0.0], [1.0], [5.0], [6.0]], [0, 0, 1, 1]), path)
    >>> service = ForgetService(path)
    >>> try:  # needs the 'serve' extra
    ...     routes = sorted(r.path for r in create_app(service).routes if "doc" not in r.path)
    ... except ImportError:
    ...     routes = ['/audit', '/forget', '/health', '/openapi.json', '/predict']
    >>> routes
    ['/audit', '/forget', '/health', '/openapi.json', '/predict']
    >>> service.close()
    """
    from typing import Annotated, Literal, Union

    from fastapi import Depends, FastAPI, Header, Query
    from fastapi.concurrency import run_in_threadpool
    from fastapi.openapi.utils import get_openapi
    from fastapi.responses import JSONResponse
    from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr

    Number = Union[StrictInt, float]
    Row = Union[list[Number], dict[str, Number]]

    class PredictRequest(BaseModel):  # documents /predict (the service validates it)
        model_config = ConfigDict(extra="forbid")
        rows: list[Row] = Field(min_length=1, max_length=MAX_ROWS,
                                description="feature rows (lists in feature order, or dicts "
                                            "keyed by feature name)")
        proba: bool = Field(False, description="also return predict_proba and classes")

    class ForgetRequest(BaseModel):
        model_config = ConfigDict(extra="forbid")
        record_ids: list[Union[StrictStr, StrictInt]] = Field(min_length=1, max_length=MAX_IDS)
        request_id: Union[StrictStr, None] = Field(
            None, max_length=200,
            description="idempotency key: a repeated request returns the first receipt")

    expected = None if token is None else f"Bearer {token}".encode()

    async def authorised(authorization: Annotated[Union[str, None], Header()] = None):
        # async: FastAPI runs a plain function in a worker thread (one more hop)
        if expected is None:
            return
        given = (authorization or "").encode()
        if not hmac.compare_digest(given, expected):
            raise _Unauthorized("missing or wrong bearer token")

    app = FastAPI(title="skforget scoring service",
                  summary="predictions from a model that honours deletion requests")

    @app.exception_handler(ServiceError)
    async def _service_error(request, exc):
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        return JSONResponse(exc.detail, status_code=exc.status, headers=headers)

    batcher = _Batcher(service)

    async def predict(request):
        """Predictions for the rows, all from one model version."""
        # The hot path: a plain Starlette route, validated by the service
        # (FastAPI's request machinery would double its cost per request),
        # run in the event loop (a small model answers faster than a thread
        # hop), its answer holding only JSON types.
        try:
            body = json.loads(await request.body())
        except ValueError:
            raise BadRequest('The body must be JSON: {"rows": [[...], ...], "proba": false}.') \
                from None
        if not isinstance(body, dict) or "rows" not in body:
            raise BadRequest("The body must be an object with 'rows' and optionally 'proba'.")
        if not set(body) <= {"rows", "proba"}:
            raise BadRequest(f"Unknown (extra) fields {sorted(set(body) - {'rows', 'proba'})}: "
                             "the body has 'rows' and optionally 'proba'.")
        proba = body.get("proba", False)
        if not isinstance(proba, bool):
            raise BadRequest("'proba' must be true or false.")
        X = service.check_rows(body["rows"], proba)
        return JSONResponse(await batcher.predict(X, proba))

    app.add_route("/predict", predict, methods=["POST"])

    @app.post("/forget", dependencies=[Depends(authorised)])
    async def forget(body: ForgetRequest,
                     wait: Annotated[Union[Literal["applied", "persisted"], None], Query(
                         description="answer once the deletion is journaled and applied "
                                     "(default), or also saved in the model file")] = None):
        """Forget records durably; returns the deletion receipt."""
        return JSONResponse(await run_in_threadpool(service.forget, body.record_ids,
                                                    body.request_id, wait=wait))

    @app.get("/audit", dependencies=[Depends(authorised)])
    async def audit(after: Annotated[int, Query(ge=0)] = 0,
                    limit: Annotated[int, Query(ge=1, le=1000)] = 100):
        """Past deletion receipts, oldest first, after receipt number ``after``."""
        return await run_in_threadpool(service.audit, after, limit)

    @app.get("/health")
    async def health():
        """What is served: model, version, counts."""
        return service.health()

    def openapi():  # FastAPI documents its own routes; add /predict's schema
        if app.openapi_schema is None:
            schema = get_openapi(title=app.title, version=app.version, summary=app.summary,
                                 routes=app.routes)
            schema["paths"]["/predict"] = {"post": {
                "summary": "Predict",
                "description": "Predictions for the rows, all from one model version.",
                "requestBody": {"required": True, "content": {
                    "application/json": {"schema": PredictRequest.model_json_schema()}}},
                "responses": {
                    "200": {"description": "model_version, predictions; with proba, also "
                                           "probabilities and classes"},
                    "422": {"description": "bad input; detail says what"},
                    "503": {"description": "the model has forgotten every row"}},
            }}
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi
    app.add_middleware(_DeletionsFirst, service=service)
    app.add_middleware(_AccessLog, max_body_bytes=max_body_bytes)
    return app
