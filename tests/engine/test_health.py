"""``/health`` (liveness), ``/health/ready`` (readiness) and the ``/healthz`` alias.

Readiness is what a balancer (HAProxy) checks: it must go 503 the moment the
engine drains or is at capacity, while liveness stays 200.
"""

from __future__ import annotations

from starlette.testclient import TestClient

from voco.engine.admission import AdmissionConfig
from voco.engine.server import create_app


def client(**admission: object) -> TestClient:
    # no lifespan: the health routes need no runtime (no models loaded)
    return TestClient(create_app(admission=AdmissionConfig(**admission)))  # type: ignore[arg-type]


def test_liveness_and_its_alias_answer_200() -> None:
    c = client()
    for path in ("/health", "/healthz"):
        r = c.get(path)
        assert r.status_code == 200
        assert r.json() == {"ok": True, "protocol": 1}


def test_ready_while_admitting() -> None:
    r = client().get("/health/ready")
    assert r.status_code == 200
    assert r.json() == {"ready": True, "sessions": 0}


def test_not_ready_while_draining_but_still_alive() -> None:
    c = client()
    c.app.state.admission.begin_drain()  # type: ignore[attr-defined]
    r = c.get("/health/ready")
    assert r.status_code == 503
    assert r.json()["reason"] == "draining"
    assert r.headers["retry-after"] == "1"
    assert c.get("/health").status_code == 200


def test_not_ready_at_capacity() -> None:
    c = client(max_sessions=1)
    c.app.state.admission.admitted()  # type: ignore[attr-defined]
    r = c.get("/health/ready")
    assert r.status_code == 503
    body = r.json()
    assert body["reason"] == "max_sessions" and body["sessions"] == 1
    assert body["retry_after_ms"] == 5000
