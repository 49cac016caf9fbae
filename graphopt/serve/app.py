"""The HTTP face of the service (Starlette, run by uvicorn).

    POST /infer[?variant=NAME]   body: JSON {"input": rows} or {"inputs": {NAME: rows}},
                                 or a .npy file (Content-Type application/x-npy);
                                 rows = [N, *sample_shape]. Reply: JSON with the variant,
                                 its quality and the outputs; a .npy of the first output
                                 when the request sends `Accept: application/x-npy`.
    GET  /health                 liveness and the loaded variants (no token needed)
    GET  /metrics                Prometheus text format

Safe by default: a bearer token (when configured) guards /infer and /metrics, bodies over
`max_body_bytes` get 413 before they are read in full, a bad body gets 400 with the
reason (JSON nested too deeply for the parser included), overload and timeouts get 503 with
Retry-After. A client that hangs up before its body is complete costs one warning line (and
a 499 in the metrics), never a traceback or a 500. Slow request heads are cut off by the
protocol (graphopt.serve.protocol), before this app sees them.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import io
import json
import logging
import time
from dataclasses import dataclass

import numpy as np
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from graphopt.errors import first_line
from graphopt.serve.service import Refused, Service

log = logging.getLogger("graphopt.serve")

NPY_TYPES = ("application/x-npy", "application/octet-stream")


class BadRequest(Exception):
    def __init__(self, reason: str, status: int = 400) -> None:
        super().__init__(reason)
        self.status = status


@dataclass(frozen=True)
class Limits:
    max_body_bytes: int = 8 << 20
    body_timeout_s: float = 10.0  # a client that trickles its body is cut off (408)


async def _read_in_time(request: Request, limits: Limits) -> bytes:
    try:
        return await asyncio.wait_for(read_body(request, limits.max_body_bytes), limits.body_timeout_s)
    except TimeoutError:
        raise BadRequest(f"body not received within {limits.body_timeout_s:g} s", 408) from None


async def read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > limit):
        raise BadRequest(f"body of {declared} bytes exceeds the limit of {limit} bytes", 413)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BadRequest(f"body exceeds the limit of {limit} bytes", 413)
        chunks.append(chunk)
    return b"".join(chunks)


def parse_rows(body: bytes, content_type: str, service: Service, max_rows: int) -> np.ndarray:
    """The request's rows as an array of the service's sample shape and dtype; BadRequest if not."""
    if not body:
        raise BadRequest("empty body; send JSON {\"input\": rows} or a .npy file")
    if content_type.split(";")[0].strip().lower() in NPY_TYPES:
        try:
            array = np.load(io.BytesIO(body), allow_pickle=False)
        except (ValueError, OSError, EOFError) as exc:
            raise BadRequest(f"body is not a .npy array ({first_line(exc)})") from None
    else:
        array = _json_rows(body, {v.input_name for v in service.variants.values()})
    want = service.sample_shape
    if array.ndim != len(want) + 1 or tuple(array.shape[1:]) != want:
        shape = "x".join(map(str, array.shape)) or "scalar"
        raise BadRequest(f"input has shape {shape}, expected Nx{'x'.join(map(str, want))} (N rows)")
    if not 1 <= len(array) <= max_rows:
        raise BadRequest(f"{len(array)} rows; a request may carry 1 to {max_rows} rows")
    if not np.can_cast(array.dtype, service.dtype, casting="same_kind"):
        raise BadRequest(f"input dtype {array.dtype} cannot be cast to {service.dtype}")
    return array.astype(service.dtype, copy=False)


def _json_rows(body: bytes, input_names: set[str]) -> np.ndarray:
    try:
        doc = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BadRequest(f"body is not JSON ({exc})") from None
    except RecursionError:  # the C parser bounds its depth by the interpreter's recursion limit
        raise BadRequest("body is JSON nested too deeply; rows need one level per input dimension") from None
    if isinstance(doc, dict) and "input" in doc:
        value = doc["input"]
    elif isinstance(doc, dict) and isinstance(doc.get("inputs"), dict) and len(doc["inputs"]) == 1:
        name, value = next(iter(doc["inputs"].items()))
        if name not in input_names:
            raise BadRequest(f"unknown input {name!r}; expected {', '.join(sorted(input_names))}")
    else:
        raise BadRequest("JSON body must be {\"input\": rows} or {\"inputs\": {NAME: rows}} with one input")
    try:
        array = np.asarray(value)
    except ValueError as exc:
        raise BadRequest(f"input is not a rectangular array ({exc})") from None
    if array.dtype == object or not (np.issubdtype(array.dtype, np.number) or array.dtype == bool):
        raise BadRequest("input must be a rectangular array of numbers")
    return array


def _authorized(request: Request, token: str | None) -> bool:
    if token is None:
        return True
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode())


def _unauthorized() -> Response:
    return JSONResponse({"error": "missing or wrong bearer token"}, 401, headers={"WWW-Authenticate": "Bearer"})


def create_app(service: Service, token: str | None = None, limits: Limits = Limits()) -> Starlette:
    async def infer(request: Request) -> Response:
        received = time.perf_counter()
        if not _authorized(request, token):
            service.metrics.response(401)
            return _unauthorized()
        only = request.query_params.get("variant")
        try:
            if only is not None and only not in service.variants:
                raise BadRequest(f"unknown variant {only!r}; loaded: {', '.join(service.variants)}")
            body = await _read_in_time(request, limits)
            # rows per request: a variant's batch, every one already capped by --max-batch at load
            cap = service.variants[only].capacity if only is not None else service.max_rows
            rows = parse_rows(body, request.headers.get("content-type", "application/json"), service, cap)
            served = await service.infer(rows, only, received)
        except BadRequest as exc:
            service.metrics.response(exc.status)
            return JSONResponse({"error": str(exc)}, exc.status)
        except Refused as exc:
            service.metrics.response(503)
            return JSONResponse({"error": str(exc)}, 503, headers={"Retry-After": "1"})
        except ClientDisconnect:  # nobody to answer: one line, no traceback, no 500
            client = "%s:%d" % tuple(request.client) if request.client else "a client"
            log.warning("client %s disconnected before its request body was complete", client)
            service.metrics.response(499)  # nginx's "client closed request"
            return Response(status_code=499)
        except Exception as exc:  # the run itself failed: say so, keep serving
            log.exception("inference failed")
            service.metrics.response(500)
            return JSONResponse({"error": f"inference failed ({type(exc).__name__}: {first_line(exc)})"}, 500)
        service.metrics.response(200, served.variant, served.latency_s)
        return _reply(request, served)

    async def health(_request: Request) -> Response:
        variants = [{"name": v.name, "quality": v.quality, "capacity": v.capacity,
                     "input_shape": [v.batch_size, *v.sample_shape], "batch_range": v.batch_range,
                     "run_sizes": v.run_sizes if v.variable else None} for v in service.variants.values()]
        return JSONResponse({"status": "ok", "slo_ms": service.slo_s * 1e3, "variants": variants})

    async def metrics(request: Request) -> Response:
        if not _authorized(request, token):
            return _unauthorized()
        text = service.metrics.render(service.service_estimates(), service.controller.waiting_rows(),
                                      service.size_estimates())
        return PlainTextResponse(text, media_type="text/plain; version=0.0.4")

    routes = [Route("/infer", infer, methods=["POST"]), Route("/health", health, methods=["GET"]),
              Route("/metrics", metrics, methods=["GET"])]

    @contextlib.asynccontextmanager
    async def lifespan(_app):
        await service.start()
        yield
        await service.stop()

    return Starlette(routes=routes, lifespan=lifespan)


def _reply(request: Request, served) -> Response:
    headers = {"X-Variant": served.variant, "X-Quality": f"{served.quality:g}",
               "X-Latency-Ms": f"{served.latency_s * 1e3:.3f}"}
    if "application/x-npy" in request.headers.get("accept", ""):
        buffer = io.BytesIO()
        np.save(buffer, next(iter(served.outputs.values())), allow_pickle=False)
        return Response(buffer.getvalue(), media_type="application/x-npy", headers=headers)
    outputs = {k: v.tolist() for k, v in served.outputs.items()}
    return JSONResponse({"variant": served.variant, "quality": served.quality, "outputs": outputs,
                         "latency_ms": served.latency_s * 1e3}, headers=headers)
