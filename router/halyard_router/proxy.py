"""Forwarding one request: admission, hold, routing, retries, streaming.

A request that finds every backend past its tier's headroom waits in the
admission queue (bounded in count and, per tier, in time) and is shed with
429 only past that; a request that finds no backend at all is held for one.

A request is retried on another backend as long as no byte of its answer has
reached the client: on a refused or broken connection, on a 503 (the worker
drains) and on a 429 (its queue is full) while other backends remain. A
stream's first chunk is read from the backend before the client's response
starts, so a backend that dies before streaming costs a retry, not an error.
A stream whose backend dies later ends with an OpenAI-style error event.
"""
from __future__ import annotations

import asyncio
import json
import logging
import time

import aiohttp
from aiohttp import web

from halyard_router.admission import ADMITTED, EVICTED, FULL, AdmissionQueue, with_room_first
from halyard_router.backends import Backends
from halyard_router.cache import ResponseCache, cache_key, cacheable
from halyard_router.config import RouterConfig, queue_waits
from halyard_router.metrics import RouterMetrics
from halyard_router.policy import choose
from halyard_router.prefix import PrefixTable, block_chain
from halyard_router.tiers import TIER_HEADER, TIERS, RequestClass, TierError, request_class

log = logging.getLogger(__name__)
RETRY = object()  # _forward's answer when another backend should be tried
FORWARD_HEADERS = ("Authorization", "Content-Type", "Accept", "X-Request-Id", "OpenAI-Organization")
DONE = b"data: [DONE]"
ROUTER_TIME_HEADER = "X-Halyard-Router-Ms"


def with_priority(raw: bytes, body: dict, priority: int) -> bytes:
    """The client's JSON body with `"priority": priority`, re-encoded only when it
    must be: the usual body has no priority, and the field is appended to the
    client's own bytes (a large prompt is not serialized again)."""
    if body.get("priority") == priority and type(body.get("priority")) is int:
        return raw
    text = raw.rstrip()
    if "priority" not in body and body and text.endswith(b"}") and raw.lstrip().startswith(b"{"):
        return b"%s,\"priority\":%d}" % (text[:-1], priority)
    return json.dumps({**body, "priority": priority}).encode()


def error_response(status: int, message: str, code: str, retry_after: int | None = None,
                   param: str | None = None) -> web.Response:
    kind = {400: "invalid_request_error", 429: "rate_limit_error"}.get(status, "service_unavailable")
    headers = {"Retry-After": str(retry_after)} if retry_after is not None else None
    body = {"error": {"message": message, "type": kind, "param": param, "code": code}}
    return web.json_response(body, status=status, headers=headers)


def stream_error_event(message: str) -> bytes:
    body = {"error": {"message": message, "type": "server_error", "param": None, "code": "backend_lost"}}
    return f"data: {json.dumps(body)}\n\n".encode()


class Proxy:
    def __init__(self, config: RouterConfig, backends: Backends, metrics: RouterMetrics,
                 session: aiohttp.ClientSession, cache: ResponseCache | None = None):
        self.config, self.backends, self.metrics, self.session = config, backends, metrics, session
        self.cache = cache
        self.counter = 0  # round-robin position
        self.holding = 0
        self.table = PrefixTable()
        self.waits = queue_waits(config)
        self.admission = AdmissionQueue(lambda: [b.load for b in backends.loads()], config.saturation,
                                        config.queue_max, self.waits)
        backends.listeners.append(self.admission.pump)
        for tier in TIERS:
            metrics.queued.labels(tier).set_function(lambda tier=tier: self.admission.depth(tier))

    async def handle(self, request: web.Request) -> web.StreamResponse:
        received = time.perf_counter()
        self.metrics.last_request.set(time.time())
        tier = self.config.tier
        self.metrics.in_flight.inc()
        try:
            body, raw, klass = await self._admit(request)
            tier = klass.tier
            response = await self._serve(request, body, raw, klass, received)
        except web.HTTPException as exc:  # pragma: no cover - aiohttp's own
            raise exc
        except _Refusal as refusal:
            response = refusal.response
        finally:
            self.metrics.in_flight.dec()
            self.metrics.last_request.set(time.time())  # idle time counts from the last answer
        self.metrics.requests.labels(str(response.status), tier).inc()
        return response

    async def _admit(self, request: web.Request) -> tuple[dict, bytes, RequestClass]:
        """(body with the class's priority, the same as bytes to send upstream, class)."""
        raw = await request.read()
        try:
            body = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            raise _Refusal(error_response(400, f"request body is not valid JSON: {exc}", "invalid_json"))
        if not isinstance(body, dict):
            raise _Refusal(error_response(400, "request body must be a JSON object", "invalid_json"))
        try:
            klass = request_class(self.config.tier, request.headers.get(TIER_HEADER), body.get("priority"))
        except TierError as exc:
            raise _Refusal(error_response(400, str(exc), "invalid_tier", param=TIER_HEADER))
        return {**body, "priority": klass.priority}, with_priority(raw, body, klass.priority), klass

    async def _serve(self, request: web.Request, body: dict, raw: bytes, klass: RequestClass,
                     received: float) -> web.StreamResponse:
        key = None
        if self.cache is not None and cacheable(body):
            key = cache_key(request.path, body)
            hit = self.cache.get(key)
            self.metrics.cache.labels("hit" if hit else "miss").inc()
            if hit is not None:
                return await _replay(request, hit)
        stored: list[bytes] | None = [] if key is not None else None
        response = await self._dispatch(request, body, raw, klass, received, stored)
        if key is not None and response.status == 200 and stored:
            self.cache.put(key, response.content_type, stored)
        return response

    async def _dispatch(self, request, body, raw, klass, received, stored) -> web.StreamResponse:
        chain = block_chain(body, self.config.block_size, self.config.prefix_blocks) \
            if self.config.policy == "prefix" else []
        prefix = chain[0] if chain else None
        deadline = time.monotonic() + self.config.hold_timeout
        budget = self.waits[klass.tier]  # seconds this request may still wait for room
        tried: set[str] = set()
        for _ in range(self.config.max_attempts + self.config.hold_max + 1):
            loads = self.backends.loads(exclude=tried)
            if not loads:
                await self._hold(deadline)
                tried.clear()
                continue
            outcome, waited = await self.admission.admit(klass.tier, budget)
            if outcome != ADMITTED:
                raise _Refusal(self._shed(klass.tier, outcome))
            if waited:  # admitted after a wait: reach a backend before awaiting anything else
                budget -= waited
                loads = self.backends.loads(exclude=tried)
                if not loads:
                    continue  # every untried backend went while it waited: hold next round
            self.counter += 1
            order = choose(self.config.policy, loads, prefix, self.counter, self.config.load_factor,
                           self.config.load_floor, self.table.longest(chain))
            name = with_room_first(order, loads, klass.tier, self.config.saturation)[0]
            self.table.record(chain, name)
            answer = await self._forward(request, name, raw, bool(body.get("stream")), received, stored)
            if answer is not RETRY:
                return answer
            tried.add(name)
            if len(tried) >= self.config.max_attempts:
                break
        raise _Refusal(error_response(503, f"no backend could take the request after {len(tried)} attempts; "
                                           "retry later", "backends_unavailable", retry_after=1))

    def _shed(self, tier: str, outcome: str) -> web.Response:
        self.metrics.shed.labels(tier, outcome).inc()
        if outcome == FULL:
            why = f"the admission queue is full ({self.config.queue_max} requests, --queue-max)"
        elif outcome == EVICTED:
            why = "a higher-tier request took this request's place in the full admission queue"
        else:
            why = f"no backend had room within the {tier}-tier wait of {self.waits[tier]:g}s (--queue-wait-{tier})"
        return error_response(429, f"every backend is saturated and {why}; {tier}-tier requests are shed "
                                   "before higher tiers, retry later", "overloaded", retry_after=1)

    async def _hold(self, deadline: float) -> None:
        """Wait for a usable backend (scale from zero, every backend lost)."""
        if self.holding >= self.config.hold_max:
            self.metrics.hold_rejected.labels("full").inc()
            raise _Refusal(error_response(
                503, f"no backend is ready and {self.holding} requests are already waiting (--hold-max); "
                     "retry later", "no_backend", retry_after=_retry_after(self.config.hold_timeout)))
        self.holding += 1
        self.metrics.held.inc()
        try:
            while not self.backends.usable():
                left = deadline - time.monotonic()
                if left <= 0:
                    self.metrics.hold_rejected.labels("timeout").inc()
                    raise _Refusal(error_response(
                        503, f"no backend became ready within {self.config.hold_timeout:g}s (the deployment may be "
                             "scaling up from zero); retry later", "no_backend",
                        retry_after=_retry_after(self.config.hold_timeout)))
                await self.backends.wait_change(min(left, 1.0))
        finally:
            self.holding -= 1
            self.metrics.held.dec()

    async def _forward(self, request, name, raw, stream, received, stored):
        backend = self.backends.members.get(name)
        if backend is None:
            return RETRY
        headers = {h: request.headers[h] for h in FORWARD_HEADERS if h in request.headers}
        self.backends.acquire(name)
        self.metrics.routed.labels(name, self.config.policy).inc()
        sent = time.perf_counter()
        self.metrics.overhead.observe(sent - received)
        try:
            async with self.session.post(backend.url + request.path, data=raw, headers=headers) as upstream:
                if upstream.status in (503, 429):
                    if upstream.status == 503:
                        self.backends.bench(name)
                    self.metrics.retries.labels(str(upstream.status)).inc()
                    return RETRY
                if stream and upstream.status == 200:
                    return await self._stream(request, upstream, name, stored)
                data = await upstream.read()
                answered = time.perf_counter()
        except (aiohttp.ClientError, asyncio.TimeoutError, ConnectionError) as exc:
            log.info("Backend %s failed before answering (%s); trying another", name, exc)
            self.backends.bench(name)
            self.metrics.retries.labels("connection").inc()
            return RETRY
        finally:
            self.backends.release(name)
        if stored is not None:
            stored.append(data)
        headers = _answer_headers(upstream, name)
        # Time spent in the router itself: before the upstream send and after the upstream answer.
        headers[ROUTER_TIME_HEADER] = f"{((sent - received) + (time.perf_counter() - answered)) * 1000:.3f}"
        return web.Response(body=data, status=upstream.status, headers=headers)

    async def _stream(self, request, upstream, name, stored) -> web.StreamResponse:
        first = await upstream.content.readany()  # errors here propagate: nothing sent yet -> retry
        if not first:
            raise aiohttp.ClientPayloadError("stream ended before its first chunk")
        response = web.StreamResponse(status=200, headers={**_answer_headers(upstream, name),
                                                           "Cache-Control": "no-cache"})
        try:
            await response.prepare(request)
        except ConnectionError:  # the client left while the first chunk was on its way: not the backend's fault
            return response
        chunk, tail = first, b""
        try:
            while chunk:
                try:
                    await response.write(chunk)
                except ConnectionError:  # the client left: closing upstream cancels its request
                    return response
                if stored is not None:
                    stored.append(chunk)
                tail = (tail + chunk)[-64:]
                chunk = await upstream.content.readany()
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            tail = b""
            log.warning("Backend %s failed mid-stream: %s", name, exc)
        if DONE not in tail:
            if stored is not None:
                stored.clear()  # an incomplete stream is never cached
            self.backends.bench(name)
            self.metrics.stream_errors.inc()
            message = f"the backend serving this stream ({name}) failed; the answer is incomplete, send it again"
            try:
                await response.write(stream_error_event(message))
            except ConnectionError:
                return response
        await response.write_eof()
        return response


class _Refusal(Exception):
    def __init__(self, response: web.Response):
        self.response = response


def _retry_after(hold_timeout: float) -> int:
    return max(1, min(30, int(hold_timeout // 4) or 1))


def _answer_headers(upstream: aiohttp.ClientResponse, name: str) -> dict:
    headers = {"X-Halyard-Backend": name}
    for h in ("Content-Type", "X-Request-Id"):
        if h in upstream.headers:
            headers[h] = upstream.headers[h]
    return headers


async def _replay(request: web.Request, hit) -> web.StreamResponse:
    response = web.StreamResponse(status=200, headers={"Content-Type": hit.content_type, "X-Halyard-Cache": "hit"})
    await response.prepare(request)
    for chunk in hit.chunks:
        await response.write(chunk)
    await response.write_eof()
    return response
