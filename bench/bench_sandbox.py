"""Sandbox overhead: ``read_file`` round trip and sandboxed ``execute_command`` spawn.

Usage: ``uv run python bench/bench_sandbox.py [--n-read 500] [--n-exec 50]``.
Prints p50/p95 in milliseconds; no assertions. The exec figure is the full
``Sandbox.handle`` path for ``true`` (parse, scope checks, prlimit + bwrap
namespaces + exec, output capture) — i.e. the fixed cost every command pays.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from voco.local.sandbox import Sandbox, sandbox_status
from voco.protocol.messages import McpRequest


def _percentiles(samples: list[float]) -> tuple[float, float]:
    qs = statistics.quantiles(samples, n=100, method="inclusive")
    return qs[49], qs[94]


def _time(fn: Callable[[], object], n: int, warmup: int = 3) -> list[float]:
    for _ in range(warmup):
        fn()
    out: list[float] = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t0) * 1000)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n-read", type=int, default=500)
    ap.add_argument("--n-exec", type=int, default=50)
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "src").mkdir()
        (root / "src" / "main.py").write_text("print('hello')\n" * 200)  # ~3 KiB
        rows: list[tuple[str, int, float, float]] = []
        for mode in ("openat2", "walk"):
            sb = Sandbox([root], None, force_fallback_resolver=(mode == "walk"))
            req = McpRequest(id="b", action="read_file", payload={"path": "src/main.py"})
            p50, p95 = _percentiles(_time(lambda sb=sb, req=req: sb.handle(req), args.n_read))
            rows.append((f"read_file ({mode})", args.n_read, p50, p95))
            sb.close()

        ok, why, _ = sandbox_status()
        if ok:
            sb = Sandbox([root], None)
            req = McpRequest(id="b", action="execute_command", payload={"argv": ["true"]})
            p50, p95 = _percentiles(_time(lambda: sb.handle(req), args.n_exec))
            rows.append(("execute_command true (bwrap)", args.n_exec, p50, p95))
            req2 = McpRequest(
                id="b", action="execute_command", payload={"command": "ls src | wc -l"}
            )
            p50, p95 = _percentiles(_time(lambda: sb.handle(req2), args.n_exec))
            rows.append(("execute_command 'ls | wc' (bash+bwrap)", args.n_exec, p50, p95))
            sb.close()
        else:
            print(f"execute_command skipped: {why}")

    print(f"{'benchmark':42} {'n':>5} {'p50 ms':>9} {'p95 ms':>9}")
    for name, n, p50, p95 in rows:
        print(f"{name:42} {n:5d} {p50:9.3f} {p95:9.3f}")


if __name__ == "__main__":
    main()
