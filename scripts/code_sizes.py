"""Lines per module (top N) and the longest functions, for the code-health report.

    uv run python scripts/code_sizes.py [--top 15] [--root src/voco]

Prints; asserts nothing (the "~400 lines of logic" bar is a review rule).
"""

from __future__ import annotations

import argparse
import ast
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--top", type=int, default=15)
    ap.add_argument("--root", default="src/voco")
    args = ap.parse_args()
    root = Path(args.root)
    sizes: list[tuple[int, str]] = []
    funcs: list[tuple[int, str]] = []
    for path in sorted(root.rglob("*.py")):
        text = path.read_text()
        sizes.append((len(text.splitlines()), str(path)))
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                funcs.append((length, f"{path}:{node.lineno} {node.name}"))
    print(f"modules (lines), top {args.top}:")
    for n, name in sorted(sizes, reverse=True)[: args.top]:
        print(f"  {n:5d}  {name}")
    print("largest functions (lines):")
    for n, name in sorted(funcs, reverse=True)[:5]:
        print(f"  {n:5d}  {name}")


if __name__ == "__main__":
    main()
