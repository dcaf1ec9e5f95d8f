"""``voco billing`` and ``voco worker`` say clearly when billing is off."""

from __future__ import annotations

import pytest

from voco.cli import main


def test_billing_status_says_off(
    db_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("STRIPE_SECRET_KEY", raising=False)
    assert main(["billing", "status", "--database", db_url]) == 0
    out = capsys.readouterr().out
    assert "billing: OFF (STRIPE_SECRET_KEY is not set)" in out
    assert "unreported usage rows: 0" in out


def test_billing_aggregate_refuses_when_off(
    db_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("STRIPE_SECRET_KEY", raising=False)
    assert main(["billing", "aggregate", "--database", db_url]) == 1
    assert "billing is off" in capsys.readouterr().err


def test_worker_once_with_billing_off_exits(
    db_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("STRIPE_SECRET_KEY", raising=False)
    assert main(["worker", "--once", "--database", db_url]) == 0
    assert "billing is off" in capsys.readouterr().err
