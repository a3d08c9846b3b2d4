"""The container files (Dockerfile, deploy/compose.yaml, deploy/k8s.yaml) against the code.

No image is built here (no container registry is reachable from CI); these checks
keep what the files say about the gateway true: its entrypoint and flags exist in
``ssjf serve``, the health and readiness paths are routes of the app, the settings
(files, ``SSJF_GATEWAY_*`` variables, the ConfigMap) validate as a ``GatewayConfig``,
and ports, users and mounts agree between the files.
"""

from __future__ import annotations

import json
import re
import shlex
import tomllib
from pathlib import Path
from typing import Any

import pytest
import typer.main

from ssjf.cli import app
from ssjf.gateway.config import ENV_PREFIX, GatewayConfig, load_config

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
DEPLOY = ROOT / "deploy"

yaml = pytest.importorskip("yaml", reason="PyYAML reads the compose and Kubernetes files")


# --- what the code says ------------------------------------------------------------


def serve_options() -> set[str]:
    """Every option name of ``ssjf serve``."""
    serve = typer.main.get_command(app).commands["serve"]
    return {o for p in serve.params for o in p.opts}


def get_routes() -> set[str]:
    """Paths the gateway answers to GET."""
    pytest.importorskip("fastapi", reason="the gateway's routes need the [gateway] extra")
    from ssjf.gateway.app import create_app

    cfg = load_config(None, {"upstreams": ["http://127.0.0.1:9"]}, environ={})
    return {r.path for r in create_app(cfg).routes if "GET" in (getattr(r, "methods", None) or ())}


def check_flags(args: list[str]) -> None:
    """``args`` are ``ssjf serve`` arguments: every ``--flag`` is one of its options."""
    unknown = {a.split("=", 1)[0] for a in args if a.startswith("--")} - serve_options()
    assert not unknown, f"not options of ssjf serve: {unknown}"


def check_env(env: dict[str, str]) -> None:
    """``SSJF_GATEWAY_*`` variables name real settings and validate."""
    names = {k[len(ENV_PREFIX) :].lower() for k in env if k.startswith(ENV_PREFIX)}
    assert names <= set(GatewayConfig.model_fields), names - set(GatewayConfig.model_fields)
    load_config(None, {"upstreams": ["http://127.0.0.1:9"]}, environ=env)


def flag_value(args: list[str], flag: str) -> str:
    return args[args.index(flag) + 1]


# --- the Dockerfile ------------------------------------------------------------------


def dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the Dockerfile, continuation lines joined."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def final_stage() -> list[tuple[str, str]]:
    steps = dockerfile()
    last_from = max(i for i, (w, _) in enumerate(steps) if w == "FROM")
    return steps[last_from:]


def image_env() -> dict[str, str]:
    env: dict[str, str] = {}
    for word, rest in final_stage():
        if word == "ENV":
            env.update(kv.split("=", 1) for kv in shlex.split(rest))
    return env


def test_dockerfile_base_user_and_extras() -> None:
    steps = dockerfile()
    (base,) = [rest for w, rest in steps if w == "ARG" and rest.startswith("PYTHON_IMAGE=")]
    assert base.split("=", 1)[1].startswith("python:3.11-slim")
    users = [rest for w, rest in final_stage() if w == "USER"]
    assert users and users[-1] not in ("root", "0")
    # The CPU extras only: the gateway and the TF-IDF predictors, no torch.
    (install,) = [rest for w, rest in steps if w == "RUN" and "[gateway,predict]" in rest]
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    for name in ("gateway", "predict"):
        assert name in extras
        assert not [r for r in extras[name] if re.match(r"torch\b", r)], name
    assert "pip install" in install


def test_dockerfile_entrypoint_healthcheck_and_env_match_the_gateway() -> None:
    stage = final_stage()
    (entry,) = [json.loads(rest) for w, rest in stage if w == "ENTRYPOINT"]
    assert entry == ["ssjf", "serve"]
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert "ssjf" in scripts
    check_flags([a for w, rest in stage if w == "CMD" for a in json.loads(rest)])
    env = image_env()
    check_env(env)
    assert env["SSJF_GATEWAY_HOST"] == "0.0.0.0"  # reachable from outside the container
    (expose,) = [rest for w, rest in stage if w == "EXPOSE"]
    assert expose == env["SSJF_GATEWAY_PORT"] == "8080"
    (health,) = [rest for w, rest in stage if w == "HEALTHCHECK"]
    assert "SSJF_GATEWAY_PORT" in health  # probes the port the gateway listens on
    paths = re.findall(r"'(/[a-z]+)'", health)
    assert paths == ["/health"] and "/health" in get_routes()


def test_dockerignore_keeps_what_the_build_copies() -> None:
    kept = {
        line[1:].rstrip("/")
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.startswith("!")
    }
    for word, rest in dockerfile():
        if word == "COPY" and not rest.startswith("--from"):
            for src in rest.split()[:-1]:
                assert src.rstrip("/") in kept and (ROOT / src).exists(), src


# --- compose -------------------------------------------------------------------------


def _volume(spec: str) -> tuple[str, str]:
    """(host side, container path) of a compose volume: the host side may hold ``${X:-y}``."""
    spec = re.sub(r":(ro|rw)$", "", spec)
    host, _, path = spec.rpartition(":")
    return host, path


def test_compose_runs_the_gateway_in_front_of_vllm() -> None:
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    gw, engine = compose["services"]["gateway"], compose["services"]["vllm"]
    assert (DEPLOY / gw["build"]["context"] / gw["build"]["dockerfile"]).resolve() == DOCKERFILE
    args = gw["command"]
    check_flags(args)
    check_env({k: str(v) for k, v in gw.get("environment", {}).items()})
    # The --config file is mounted from deploy/, and it validates.
    mounts = dict(_volume(v)[::-1] for v in gw["volumes"])
    config_path = flag_value(args, "--config")
    local = DEPLOY / mounts[config_path]
    raw = tomllib.loads(local.read_text())["gateway"]
    # Relative paths are relative to the file's folder in the container: mounted there.
    predictor = Path(config_path).parent / raw["predictor"]
    assert str(predictor) in mounts
    assert Path(raw["traffic_log"]).parent.as_posix() in mounts
    cfg = load_config(local, environ={})
    # The upstream is the vllm service on its default port, running priority scheduling.
    assert cfg.upstreams == ["http://vllm:8000"] and cfg.backend == "vllm"
    assert flag_value(engine["command"], "--scheduling-policy") == "priority"
    assert gw["depends_on"]["vllm"]["condition"] == "service_healthy" and engine["healthcheck"]
    assert gw["ports"] == [f"8080:{image_env()['SSJF_GATEWAY_PORT']}"]


# --- Kubernetes ----------------------------------------------------------------------


def k8s() -> dict[str, Any]:
    return {d["kind"]: d for d in yaml.safe_load_all((DEPLOY / "k8s.yaml").read_text())}


def _port(container: dict[str, Any], port: int | str) -> int:
    if isinstance(port, int):
        return port
    (n,) = [p["containerPort"] for p in container["ports"] if p["name"] == port]
    return int(n)


def test_k8s_sidecar_probes_ports_and_config(tmp_path: Path) -> None:
    docs = k8s()
    pod = docs["Deployment"]["spec"]["template"]
    containers = {c["name"]: c for c in pod["spec"]["containers"]}
    gw, engine = containers["gateway"], containers["vllm"]
    check_flags(gw["args"])
    check_env({e["name"]: str(e["value"]) for e in gw.get("env", [])})
    # The ConfigMap's file is where --config looks, and it validates.
    volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
    mounts = {m["mountPath"]: m["name"] for m in gw["volumeMounts"]}
    config_path = Path(flag_value(gw["args"], "--config"))
    config_volume = volumes[mounts[str(config_path.parent)]]
    cm = docs["ConfigMap"]
    assert config_volume["configMap"]["name"] == cm["metadata"]["name"]
    local = tmp_path / config_path.name
    local.write_text(cm["data"][config_path.name])
    cfg = load_config(local, environ={})
    assert cfg.predictor in mounts and Path(str(cfg.traffic_log)).parent.as_posix() in mounts
    assert "emptyDir" in volumes[mounts[Path(str(cfg.traffic_log)).parent.as_posix()]]
    # Upstream: the engine container of the same pod, with priority scheduling.
    assert cfg.upstreams == [f"http://127.0.0.1:{_port(engine, 'engine')}"]
    assert flag_value(engine["args"], "--scheduling-policy") == "priority"
    # Probes: real routes, on the port the image listens on; readiness is /ready unless
    # protect_metrics puts it behind a key.
    routes, port = get_routes(), int(image_env()["SSJF_GATEWAY_PORT"])
    live, ready = gw["livenessProbe"]["httpGet"], gw["readinessProbe"]["httpGet"]
    assert live["path"] == "/health" and ready["path"] in routes and live["path"] in routes
    assert ready["path"] == ("/health" if cfg.protect_metrics else "/ready")
    assert _port(gw, live["port"]) == _port(gw, ready["port"]) == port
    # The image's non-root uid; the Service reaches the gateway, not the engine.
    assert gw["securityContext"]["runAsUser"] == int(final_stage_user())
    service = docs["Service"]["spec"]
    assert service["selector"].items() <= pod["metadata"]["labels"].items()
    assert [_port(gw, p["targetPort"]) for p in service["ports"]] == [port]
    assert engine["resources"]["limits"]["nvidia.com/gpu"] == 1


def final_stage_user() -> str:
    return [rest for w, rest in final_stage() if w == "USER"][-1]
