import pytest

from voco.local.ui.security import Gate

GATE = Gate(8766, "s3cret-value")


@pytest.mark.parametrize(
    ("host", "origin", "secret", "ok"),
    [
        ("127.0.0.1:8766", "http://127.0.0.1:8766", "s3cret-value", True),
        ("localhost:8766", "http://localhost:8766", "s3cret-value", True),
        ("LOCALHOST:8766", "http://localhost:8766", "s3cret-value", True),
        ("127.0.0.1:8766", "http://127.0.0.1:8766", "wrong", False),
        ("127.0.0.1:8766", "http://127.0.0.1:8766", None, False),
        ("127.0.0.1:8766", "http://127.0.0.1:8766", "", False),
        ("127.0.0.1:8766", "http://evil.example", "s3cret-value", False),
        ("127.0.0.1:8766", None, "s3cret-value", False),
        ("127.0.0.1:8766", "null", "s3cret-value", False),
        ("127.0.0.1:8766", "https://127.0.0.1:8766", "s3cret-value", False),
        ("127.0.0.1:8766", "http://127.0.0.1:9999", "s3cret-value", False),
        ("evil.example:8766", "http://evil.example:8766", "s3cret-value", False),  # rebinding
        ("127.0.0.1", "http://127.0.0.1:8766", "s3cret-value", False),
        (None, "http://127.0.0.1:8766", "s3cret-value", False),
        ("127.0.0.1:8766.evil.example", "http://127.0.0.1:8766", "s3cret-value", False),
    ],
)
def test_websocket_gate(host, origin, secret, ok):
    assert (GATE.check_websocket(host, origin, secret) is None) is ok


def test_csp_pins_connections_to_this_origin():
    csp = GATE.csp()
    assert "connect-src 'self' ws://127.0.0.1:8766 ws://localhost:8766" in csp
    assert "frame-ancestors 'none'" in csp
