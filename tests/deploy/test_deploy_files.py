"""The deploy files a team copies (deploy/): they parse, and every ``voco``
command line, flag and setting they use exists.

Command lines are checked by the real argparse parser of ``voco``
(:func:`voco.cli.build_parser`), so a renamed or removed flag fails here, not
in someone's cluster. Environment variables with our prefixes must be read
somewhere in ``src/voco`` (as a string literal: ``os.environ.get("VOCO_…")``
or a named constant).
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from voco.cli import build_parser
from voco.engine.admission import Admission
from voco.engine.http_routes import http_routes
from voco.engine.metrics import EngineMetrics
from voco.engine.runtime import EngineRuntime

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
PREFIXES = ("VOCO_", "SUPABASE_", "STRIPE_", "ANTHROPIC_")


def cli_error(argv: list[str]) -> str | None:
    """What ``voco`` would say about this command line, or None if it parses."""
    parser = build_parser()
    err = io.StringIO()
    try:  # subcommands are required: an unknown one exits like a bad flag
        with contextlib.redirect_stderr(err):
            parser.parse_args(argv)
    except SystemExit:
        return err.getvalue().strip().splitlines()[-1] if err.getvalue() else "exit"
    return None


def code_env_names() -> set[str]:
    names: set[str] = set()
    for path in (REPO / "src" / "voco").rglob("*.py"):
        names.update(re.findall(r"[\"']([A-Z][A-Z0-9_]+)[\"']", path.read_text()))
    return names


def load_all(path: Path) -> list[Any]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d is not None]


def compose() -> dict[str, Any]:
    doc = load_all(DEPLOY / "compose.yaml")
    assert len(doc) == 1
    return doc[0]  # type: ignore[no-any-return]


def k8s_docs() -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = []
    for path in sorted((DEPLOY / "k8s").glob("*.yaml")):
        docs += load_all(path)
    return docs


def containers(doc: dict[str, Any]) -> list[dict[str, Any]]:
    spec = doc.get("spec", {})
    pod = spec.get("template", {}).get("spec", {})
    return list(pod.get("containers", []))


def voco_command_lines() -> list[tuple[str, list[str]]]:
    """(where, argv after ``voco``) for every process the files start."""
    found: list[tuple[str, list[str]]] = []
    for name, svc in compose()["services"].items():
        if str(svc.get("image", "")).startswith("voco") and "command" in svc:
            found.append((f"compose {name}", [str(a) for a in svc["command"]]))
    for doc in k8s_docs():
        for c in containers(doc):
            if str(c.get("image", "")).startswith("voco"):
                found.append((f"k8s {doc['metadata']['name']}/{c['name']}", list(c["args"])))
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    entry = re.search(r"^ENTRYPOINT (\[.*\])$", dockerfile, re.M)
    cmd = re.search(r"^CMD (\[.*\])$", dockerfile, re.M)
    assert entry and cmd
    assert yaml.safe_load(entry.group(1)) == ["voco"]
    found.append(("Dockerfile CMD", yaml.safe_load(cmd.group(1))))
    return found


def env_names_used() -> list[tuple[str, str]]:
    used: list[tuple[str, str]] = []
    for name, svc in compose()["services"].items():
        for var in svc.get("environment", {}) or {}:
            used.append((f"compose {name}", var))
    for doc in k8s_docs():
        for c in containers(doc):
            for e in c.get("env", []):
                used.append((f"k8s {doc['metadata']['name']}", e["name"]))
    for line in (DEPLOY / "Dockerfile").read_text().splitlines():
        used += [("Dockerfile", v) for v in re.findall(r"\b([A-Z][A-Z0-9_]+)=", line)]
    return used


def test_the_checker_catches_what_it_should() -> None:
    assert cli_error(["serve", "--port", "8765"]) is None
    assert cli_error(["serve", "--no-such-flag"]) is not None
    assert cli_error(["no-such-command"]) is not None
    assert cli_error(["worker", "--database", "postgresql://x/y"]) is None
    assert "VOCO_DATABASE_URL" in code_env_names()
    assert "VOCO_NO_SUCH_SETTING" not in code_env_names()


def test_every_voco_command_line_parses() -> None:
    lines = voco_command_lines()
    assert {argv[0] for _, argv in lines} >= {"serve", "worker", "db"}
    bad = [(where, argv, cli_error(argv)) for where, argv in lines if cli_error(argv) is not None]
    assert not bad, bad


def test_every_setting_the_files_use_is_read_by_the_code() -> None:
    known = code_env_names()
    used = [(where, v) for where, v in env_names_used() if v.startswith(PREFIXES)]
    assert any(v == "VOCO_DATABASE_URL" for _, v in used)
    missing = [(where, v) for where, v in used if v not in known]
    assert not missing, missing


def test_compose_topology() -> None:
    services = compose()["services"]
    engines = [n for n, s in services.items() if (s.get("command") or [""])[0] == "serve"]
    assert len(engines) >= 2, "several engines behind the balancer"
    assert services["worker"]["command"][0] == "worker", "procrastinate worker, its own process"
    assert "postgres" in services
    lb = services["haproxy"]
    assert any("haproxy.cfg" in v for v in lb["volumes"])
    for n in engines:
        assert f"{n}:8765" in lb["environment"].values(), n
        assert int(services[n]["stop_grace_period"].rstrip("s")) > 30  # > --shutdown-timeout


def test_kubernetes_manifests() -> None:
    docs = k8s_docs()
    kinds = {d["kind"]: d for d in docs if d["metadata"]["name"] == "voco-engine"}
    assert set(kinds) >= {"Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget"}
    dep = kinds["Deployment"]
    (engine,) = containers(dep)
    assert engine["lifecycle"]["preStop"], "drain before SIGTERM"
    shutdown = float(engine["args"][engine["args"].index("--shutdown-timeout") + 1])
    pre_stop = float(engine["lifecycle"]["preStop"]["exec"]["command"][-1])
    assert dep["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] > shutdown + pre_stop
    hpa_metrics = kinds["HorizontalPodAutoscaler"]["spec"]["metrics"]
    assert any(
        x.get("pods", {}).get("metric", {}).get("name") == "voco_sessions" for x in hpa_metrics
    )
    pdb = kinds["PodDisruptionBudget"]["spec"]
    assert pdb["selector"]["matchLabels"] == dep["spec"]["selector"]["matchLabels"]
    svc = kinds["Service"]["spec"]
    assert svc["selector"] == dep["spec"]["selector"]["matchLabels"]


def test_health_paths_are_served_by_the_engine() -> None:
    def no_runtime() -> EngineRuntime:
        raise AssertionError("building the routes must not need the runtime")

    served = {r.path for r in http_routes(no_runtime, Admission(), EngineMetrics())}
    cfg = (DEPLOY / "haproxy.cfg").read_text()
    paths = re.findall(r"option httpchk GET (\S+)", cfg)
    for doc in k8s_docs():
        for c in containers(doc):
            for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
                if probe in c:
                    paths.append(c[probe]["httpGet"]["path"])
    assert paths
    for p in set(paths):
        assert p in served, f"{p} is not a route of the engine ({sorted(served)})"


@pytest.mark.skipif(shutil.which("haproxy") is None, reason="haproxy missing (scripts/setup.sh)")
def test_haproxy_config_is_valid() -> None:
    env = {
        **os.environ,
        "LB_BIND": "127.0.0.1:8765",
        **{f"ENGINE_{i}": f"127.0.0.1:{9000 + i}" for i in (1, 2, 3)},
    }
    haproxy = shutil.which("haproxy")
    assert haproxy is not None
    out = subprocess.run(
        [haproxy, "-c", "-f", str(DEPLOY / "haproxy.cfg")], env=env, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stdout + out.stderr
