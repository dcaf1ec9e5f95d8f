"""Stripe API double on 127.0.0.1, faithful to the parts of the wire Voco uses.

What it keeps of Stripe's contract:

* form-encoded request bodies with bracketed nesting (``payload[value]=3``,
  ``items[0][quantity]=2``), ``Authorization: Bearer sk_…`` required;
* ``Idempotency-Key``: the same key with the same parameters replays the first
  response (header ``Idempotent-Replayed: true``); the same key with other
  parameters is a 400 ``idempotency_error``;
* billing meter events (``POST /v1/billing/meter_events``): whole-number
  ``value`` only, ``identifier`` unique (a second event with a used identifier
  is a 400 ``invalid_request_error``), ``timestamp`` within 35 days;
* customers, subscriptions and subscription items with ``quantity`` and
  ``proration_behavior``; error objects ``{"error": {type, code, message,
  param}}`` with Stripe's status codes;
* fault injection for the tests: a queue of faults applied to the next
  requests (``500``/``429`` answers, a hang, or *process then drop* — Stripe
  records the event but the client never sees the answer).

Webhooks are signed as Stripe signs them (:func:`sign_webhook`).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import itertools
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .net import serve_asgi

API_KEY = "sk_test_voco_double"
MAX_AGE_S = 35 * 24 * 3600


def decode_form(body: str) -> dict[str, Any]:
    """Stripe's bracket notation → nested dicts (lists become dicts keyed "0", "1"…)."""
    out: dict[str, Any] = {}
    for key, value in parse_qsl(body, keep_blank_values=True):
        parts = key.replace("]", "").split("[")
        node = out
        for p in parts[:-1]:
            node = node.setdefault(p, {})
        node[parts[-1]] = value
    return out


def _listify(d: Any) -> list[Any]:
    if isinstance(d, dict):
        return [d[k] for k in sorted(d, key=int)]
    return list(d or [])


def sign_webhook(payload: bytes, secret: str, timestamp: int | None = None) -> str:
    """The ``Stripe-Signature`` header for ``payload``: ``t=…,v1=…``."""
    ts = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{ts}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"t={ts},v1={mac}"


@dataclass
class Fault:
    status: int | None = None  # answer with this status and a Stripe error
    hang_s: float = 0.0  # wait before doing anything
    drop_after: bool = False  # process the request, then never answer
    # set once the request is processed (with drop_after: Stripe has the event,
    # the client has no answer): a test's barrier for "between send and mark"
    reached: asyncio.Event | None = None


@dataclass
class StripeDouble:
    api_key: str = API_KEY
    faults: list[Fault] = field(default_factory=list)
    meter_events: list[dict[str, Any]] = field(default_factory=list)
    customers: dict[str, dict[str, Any]] = field(default_factory=dict)
    subscriptions: dict[str, dict[str, Any]] = field(default_factory=dict)
    items: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: list[tuple[str, str]] = field(default_factory=list)
    _idem: dict[str, tuple[str, int, str]] = field(default_factory=dict)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    url: str = ""

    # ---------------------------------------------------------------- helpers

    def totals(self) -> dict[tuple[str, str], int]:
        """Sum of accepted meter event values per (customer, event name)."""
        out: dict[tuple[str, str], int] = {}
        for e in self.meter_events:
            key = (e["payload"]["stripe_customer_id"], e["event_name"])
            out[key] = out.get(key, 0) + int(e["payload"]["value"])
        return out

    def new_id(self, prefix: str) -> str:
        return f"{prefix}_{next(self._ids):08d}"

    @staticmethod
    def error(status: int, etype: str, message: str, code: str | None = None) -> JSONResponse:
        err: dict[str, Any] = {"type": etype, "message": message}
        if code:
            err["code"] = code
        return JSONResponse({"error": err}, status_code=status)

    # --------------------------------------------------------------- the app

    def app(self) -> Starlette:
        async def handle(request: Request) -> Response:
            return await self._handle(request)

        return Starlette(
            routes=[Route("/v1/{path:path}", handle, methods=["GET", "POST", "DELETE"])]
        )

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[StripeDouble]:
        async with serve_asgi(self.app()) as url:
            self.url = url
            yield self

    async def _handle(self, request: Request) -> Response:
        path = request.url.path.removeprefix("/v1/")
        self.requests.append((request.method, path))
        if request.headers.get("authorization", "") != f"Bearer {self.api_key}":
            return self.error(401, "invalid_request_error", "Invalid API Key provided")
        fault = self.faults.pop(0) if self.faults else None
        if fault and fault.hang_s:
            await asyncio.sleep(fault.hang_s)
        if fault and fault.status:
            kind = "rate_limit_error" if fault.status == 429 else "api_error"
            return self.error(fault.status, kind, "injected failure")
        body = (await request.body()).decode()
        params = decode_form(body) if body else dict(request.query_params)
        key = request.headers.get("idempotency-key")
        if key and request.method == "POST":
            fingerprint = f"{request.method} {path} {json.dumps(params, sort_keys=True)}"
            seen = self._idem.get(key)
            if seen is not None:
                if seen[0] != fingerprint:
                    return self.error(
                        400,
                        "idempotency_error",
                        "Keys for idempotent requests can only be used with the same "
                        "parameters they were first used with.",
                    )
                return Response(
                    seen[2],
                    status_code=seen[1],
                    media_type="application/json",
                    headers={"Idempotent-Replayed": "true"},
                )
        response = self._route(request.method, path, params)
        if key and request.method == "POST" and response.status_code < 500:
            self._idem[key] = (fingerprint, response.status_code, bytes(response.body).decode())
        if fault and fault.reached is not None:
            fault.reached.set()
        if fault and fault.drop_after:
            await asyncio.sleep(3600)  # the client times out; the work is done
        return response

    def _route(self, method: str, path: str, p: dict[str, Any]) -> JSONResponse:
        parts = path.split("/")
        if path == "billing/meter_events" and method == "POST":
            return self._meter_event(p)
        if parts[0] == "customers":
            return self._customers(method, parts[1:], p)
        if parts[0] == "subscriptions":
            return self._subscriptions(method, parts[1:], p)
        if parts[0] == "subscription_items" and len(parts) == 2:
            return self._item(method, parts[1], p)
        return self.error(404, "invalid_request_error", f"Unrecognized request URL ({path})")

    def _meter_event(self, p: dict[str, Any]) -> JSONResponse:
        payload = p.get("payload") or {}
        for name in ("event_name",):
            if not p.get(name):
                return self.error(
                    400, "invalid_request_error", f"Missing {name}", "parameter_missing"
                )
        value = str(payload.get("value", ""))
        if not value.isdigit():
            return self.error(
                400,
                "invalid_request_error",
                "The value must be a whole number.",
                "parameter_invalid_integer",
            )
        customer = payload.get("stripe_customer_id")
        if customer not in self.customers:
            return self.error(
                400, "invalid_request_error", f"No such customer: '{customer}'", "resource_missing"
            )
        ts = int(p.get("timestamp") or time.time())
        if ts < time.time() - MAX_AGE_S or ts > time.time() + 300:
            return self.error(
                400, "invalid_request_error", "Timestamp out of range", "parameter_invalid"
            )
        identifier = p.get("identifier") or self.new_id("mev")
        if any(e["identifier"] == identifier for e in self.meter_events):
            return self.error(
                400,
                "invalid_request_error",
                f"An event with identifier {identifier} already exists.",
                "resource_already_exists",
            )
        event = {
            "object": "billing.meter_event",
            "created": int(time.time()),
            "event_name": p["event_name"],
            "identifier": identifier,
            "livemode": False,
            "payload": {"stripe_customer_id": customer, "value": value},
            "timestamp": ts,
        }
        self.meter_events.append(event)
        return JSONResponse(event)

    def _customers(self, method: str, rest: list[str], p: dict[str, Any]) -> JSONResponse:
        if not rest and method == "POST":
            cid = self.new_id("cus")
            self.customers[cid] = {
                "id": cid,
                "object": "customer",
                "metadata": p.get("metadata", {}),
            }
            return JSONResponse(self.customers[cid])
        if len(rest) == 1 and rest[0] in self.customers:
            if method == "DELETE":
                self.customers.pop(rest[0])
                return JSONResponse({"id": rest[0], "object": "customer", "deleted": True})
            return JSONResponse(self.customers[rest[0]])
        return self.error(404, "invalid_request_error", "No such customer", "resource_missing")

    def _subscription_json(self, sid: str) -> dict[str, Any]:
        sub = dict(self.subscriptions[sid])
        sub["items"] = {
            "object": "list",
            "data": [self.items[i] for i in sub.pop("item_ids")],
        }
        return sub

    def _subscriptions(self, method: str, rest: list[str], p: dict[str, Any]) -> JSONResponse:
        if not rest and method == "POST":
            if p.get("customer") not in self.customers:
                return self.error(
                    400, "invalid_request_error", "No such customer", "resource_missing"
                )
            sid = self.new_id("sub")
            item_ids = []
            for it in _listify(p.get("items")):
                iid = self.new_id("si")
                self.items[iid] = {
                    "id": iid,
                    "object": "subscription_item",
                    "subscription": sid,
                    "price": {"id": it.get("price", "")},
                    "quantity": int(it.get("quantity", 1)),
                }
                item_ids.append(iid)
            self.subscriptions[sid] = {
                "id": sid,
                "object": "subscription",
                "customer": p["customer"],
                "status": "active",
                "metadata": p.get("metadata", {}),
                "item_ids": item_ids,
            }
            return JSONResponse(self._subscription_json(sid))
        if len(rest) == 1 and rest[0] in self.subscriptions:
            if method == "DELETE":
                self.subscriptions[rest[0]]["status"] = "canceled"
            return JSONResponse(self._subscription_json(rest[0]))
        return self.error(404, "invalid_request_error", "No such subscription", "resource_missing")

    def _item(self, method: str, iid: str, p: dict[str, Any]) -> JSONResponse:
        item = self.items.get(iid)
        if item is None:
            return self.error(
                404,
                "invalid_request_error",
                f"No such subscription item: '{iid}'",
                "resource_missing",
            )
        if method == "POST" and "quantity" in p:
            q = str(p["quantity"])
            if not q.isdigit():
                return self.error(
                    400, "invalid_request_error", "Invalid integer", "parameter_invalid_integer"
                )
            item["quantity"] = int(q)
            item["proration_behavior"] = p.get("proration_behavior", "create_prorations")
        return JSONResponse(item)
