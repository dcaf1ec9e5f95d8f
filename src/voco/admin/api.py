"""The org admin HTTP API on the engine: ``/v1/orgs/…`` (docs/admin-api.md).

Authenticated with the same access token as ``/v1/session`` (``Authorization:
Bearer``), verified by the runtime's verifier; each request is one
:func:`~voco.store.db.as_user` transaction, so row-level security is the
guard and :mod:`voco.admin.orgs` only words the refusals. Errors are JSON
``{"error": code, "message": text}``: 401 bad token, 403 not allowed, 404
unknown organisation (also to non-members: existence is not leaked), 409
conflicts (the last owner, an existing member), 422 bad input, 400 a body
that is not a JSON object, 503 when the engine has no Postgres store.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from voco.admin import orgs
from voco.admin.orgs import AdminError
from voco.auth import AuthError, Verifier
from voco.store.db import Conn, Pool, as_service, as_user
from voco.store.pg_tenants import audit
from voco.store.tenancy import SYSTEM_ORG, as_uuid

log = logging.getLogger("voco.admin")

MAX_BODY = 16 * 1024


class AdminBackend(Protocol):
    """What the API needs of the engine runtime: its verifier and its store."""

    auth: Verifier
    tenants: Any  # the tenant store; Postgres ones expose ``pool``


# (connection inside the caller's transaction, request, its JSON body — read
# before the transaction opens: a slow client must not hold one open)
Body = dict[str, Any]
Reply = tuple[int, dict[str, Any]]  # status, JSON payload
Job = Callable[[Conn, Request, Body], Awaitable[Reply]]


def _error(status: int, error: str, message: str) -> JSONResponse:
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse({"error": error, "message": message}, status, headers=headers)


async def _body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if len(raw) > MAX_BODY:
        raise AdminError(413, "too_large", f"request body over {MAX_BODY} bytes")
    try:
        value = json.loads(raw or b"{}")
    except ValueError:
        raise AdminError(400, "bad_request", "the body must be a JSON object") from None
    if not isinstance(value, dict):
        raise AdminError(400, "bad_request", "the body must be a JSON object")
    return value


def admin_routes(backend: Callable[[], AdminBackend]) -> list[Route]:
    """The ``/v1/orgs`` routes; ``backend()`` gives the live runtime (read per
    request, since the engine builds it in its lifespan)."""

    async def run(request: Request, job: Job) -> JSONResponse:
        rt = backend()
        header = request.headers.get("authorization", "")
        if header[:7].lower() != "bearer ":
            return _error(401, "unauthenticated", "send Authorization: Bearer <access token>")
        pool: Pool | None = getattr(rt.tenants, "pool", None)
        try:
            principal = await rt.auth.verify(header[7:].strip())
        except AuthError as exc:
            if pool is not None:
                await _audit_auth_failure(pool, str(exc))
            return _error(401, "unauthenticated", str(exc))
        user = as_uuid(principal.user_id)
        if user is None:
            return _error(401, "unauthenticated", "token sub must be a UUID")
        if pool is None:
            return _error(503, "unavailable", "the admin API needs the Postgres store")
        try:
            body = await _body(request) if request.method in ("POST", "PATCH") else {}
            async with as_user(pool, {**principal.claims, "sub": user}) as conn:
                status, payload = await job(conn, request, body)
        except AdminError as exc:
            return _error(exc.status, exc.error, exc.message)
        except Exception:  # a clear JSON answer, the traceback only in the log
            log.exception("admin request %s %s failed", request.method, request.url.path)
            return _error(500, "internal", "internal error")
        return JSONResponse(payload, status)

    def route(path: str, methods: list[str], job: Job) -> Route:
        async def endpoint(request: Request) -> JSONResponse:
            return await run(request, job)

        return Route(path, endpoint, methods=methods)

    async def orgs_get(conn: Conn, request: Request, body: Body) -> Reply:
        return 200, {"orgs": await orgs.list_orgs(conn)}

    async def orgs_post(conn: Conn, request: Request, body: Body) -> Reply:
        return 201, {"org": await orgs.create_org(conn, body.get("name"))}

    async def org_get(conn: Conn, request: Request, body: Body) -> Reply:
        return 200, {"org": await orgs.get_org(conn, request.path_params["org"])}

    async def members_get(conn: Conn, request: Request, body: Body) -> Reply:
        return 200, {"members": await orgs.list_members(conn, request.path_params["org"])}

    async def members_post(conn: Conn, request: Request, body: Body) -> Reply:
        member = await orgs.add_member(
            conn, request.path_params["org"], body.get("user_id"), body.get("role", "member")
        )
        return 201, {"member": member}

    async def member_patch(conn: Conn, request: Request, body: Body) -> Reply:
        p = request.path_params
        return 200, {"member": await orgs.set_role(conn, p["org"], p["user"], body.get("role"))}

    async def member_delete(conn: Conn, request: Request, body: Body) -> Reply:
        p = request.path_params
        return 200, {"member": await orgs.remove_member(conn, p["org"], p["user"])}

    async def projects_get(conn: Conn, request: Request, body: Body) -> Reply:
        return 200, {"projects": await orgs.list_projects(conn, request.path_params["org"])}

    return [
        route("/v1/orgs", ["GET"], orgs_get),
        route("/v1/orgs", ["POST"], orgs_post),
        route("/v1/orgs/{org}", ["GET"], org_get),
        route("/v1/orgs/{org}/members", ["GET"], members_get),
        route("/v1/orgs/{org}/members", ["POST"], members_post),
        route("/v1/orgs/{org}/members/{user}", ["PATCH"], member_patch),
        route("/v1/orgs/{org}/members/{user}", ["DELETE"], member_delete),
        route("/v1/orgs/{org}/projects", ["GET"], projects_get),
    ]


async def _audit_auth_failure(pool: Pool, reason: str) -> None:
    try:
        # service_role: a token that did not verify names no tenant to trust
        async with as_service(pool, "an auth failure belongs to no tenant") as conn:
            await audit(conn, SYSTEM_ORG, "auth.failed", "admin-api", {"reason": reason[:200]})
    except Exception:  # the refusal matters more than its record
        log.exception("could not audit an auth failure")
