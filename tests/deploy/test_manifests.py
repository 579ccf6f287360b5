"""deploy/ validated without Docker or a cluster: schemas, and the relations between its numbers."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from kit.settings import Settings
from tests.deploy.conftest import DEPLOY, NGINX, needs_nginx, site_config

K8S = sorted((DEPLOY / "k8s").glob("*.yaml"))
LIFESPAN_MARGIN = 5  # seconds past drain delay + graceful timeout for lifespan shutdown


def documents(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def resource(kind: str) -> dict[str, Any]:
    found = [d for path in K8S for d in documents(path) if d["kind"] == kind]
    assert len(found) == 1, f"expected one {kind} in deploy/k8s"
    return found[0]


def seconds(value: str) -> float:
    match = re.fullmatch(r"(\d+(?:\.\d+)?)(ms|s)?", value)
    assert match, value
    number = float(match[1])
    return number / 1000 if match[2] == "ms" else number


def nginx_directive(name: str) -> str:
    site = (DEPLOY / "nginx" / "kit.conf").read_text()
    values = re.findall(rf"^\s*{name} ([^;]+);", site, flags=re.MULTILINE)
    assert len(values) == 1, f"{name} in deploy/nginx/kit.conf: {values}"
    return values[0]


@pytest.mark.parametrize("path", K8S, ids=[p.name for p in K8S])
def test_manifest_is_valid_against_the_kubernetes_schemas(path: Path) -> None:
    kubernetes_validate = pytest.importorskip("kubernetes_validate")
    for document in documents(path):
        # strict: a misspelt field is an error, not silently ignored by the API server
        kubernetes_validate.validate(document, kubernetes_validate.latest_version(), strict=True)


def test_an_invalid_manifest_is_rejected() -> None:
    kubernetes_validate = pytest.importorskip("kubernetes_validate")
    deployment = resource("Deployment")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    broken = {**container, "readinessProbe": {"httpGet": {"path": "/readyz", "prot": 8000}}}
    spec = {**deployment["spec"]["template"]["spec"], "containers": [broken]}
    document = {**deployment, "spec": {**deployment["spec"], "template": {"spec": spec}}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(document, kubernetes_validate.latest_version(), strict=True)


def kit_settings() -> Settings:
    """The Settings every pod gets from the ConfigMap (parsed like kit serve parses them)."""
    return Settings.from_env(resource("ConfigMap")["data"])


def test_probes_point_at_kit_endpoints() -> None:
    container = resource("Deployment")["spec"]["template"]["spec"]["containers"][0]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["startupProbe"]["httpGet"]["path"] == "/healthz"
    port = kit_settings().port
    names = {p["name"]: p["containerPort"] for p in container["ports"]}
    for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
        target = container[probe]["httpGet"]["port"]
        assert names.get(target, target) == port


def test_drain_and_grace_period_fit_together() -> None:
    settings = kit_settings()
    pod = resource("Deployment")["spec"]["template"]["spec"]
    readiness = pod["containers"][0]["readinessProbe"]
    # The kubelet's SIGKILL comes only after the drain delay, the drain and lifespan shutdown.
    needed = settings.drain_delay + settings.graceful_timeout + LIFESPAN_MARGIN
    assert pod["terminationGracePeriodSeconds"] >= needed
    # Readiness notices the drain (failureThreshold probes) well inside the delay, leaving
    # time for endpoint removal to reach every proxy.
    noticed = readiness["periodSeconds"] * readiness["failureThreshold"]
    assert settings.drain_delay >= 2 * noticed
    # The liveness probe must not restart a pod that is slow to start or merely draining.
    startup = pod["containers"][0]["startupProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 10


def test_one_worker_per_pod_non_root_and_migrations_in_the_job() -> None:
    settings = kit_settings()
    assert settings.workers == 1
    assert settings.migrate is False
    pod = resource("Deployment")["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    container = pod["containers"][0]
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert "cpu" in container["resources"]["requests"]
    assert "memory" in container["resources"]["limits"]
    job = resource("Job")["spec"]["template"]["spec"]
    assert job["containers"][0]["command"] == ["kit", "migrate"]
    assert job["restartPolicy"] == "Never"


def test_service_pdb_and_hpa_select_the_deployment() -> None:
    deployment = resource("Deployment")
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert resource("Service")["spec"]["selector"].items() <= labels.items()
    assert resource("PodDisruptionBudget")["spec"]["selector"]["matchLabels"].items() <= (
        labels.items()
    )
    target = resource("HorizontalPodAutoscaler")["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", deployment["metadata"]["name"])
    hpa = resource("HorizontalPodAutoscaler")["spec"]
    surge = deployment["spec"]["strategy"]["rollingUpdate"]["maxSurge"]
    # Every pod holds up to KIT_DB_POOL_MAX connections; Postgres allows 100 by default, 3 of
    # them reserved for superusers.
    assert (hpa["maxReplicas"] + surge) * kit_settings().db_pool_max <= 100 - 3


def compose() -> dict[str, Any]:
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text())


def test_compose_migrates_once_then_starts_replicas_behind_nginx() -> None:
    services = compose()["services"]
    assert services["postgres"]["image"].startswith("postgres:18")
    assert "healthcheck" in services["postgres"]
    assert services["migrate"]["command"] == ["kit", "migrate"]
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    kit = services["kit"]
    assert kit["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert kit["deploy"]["replicas"] > 1
    assert kit["build"]["dockerfile"] == "deploy/Dockerfile"
    assert "./nginx/kit.conf:/etc/nginx/conf.d/default.conf:ro" in services["nginx"]["volumes"]
    settings = Settings.from_env({k: str(v) for k, v in kit["environment"].items()})
    assert settings.migrate is False
    grace = seconds(kit["stop_grace_period"])
    assert grace >= settings.drain_delay + settings.graceful_timeout + LIFESPAN_MARGIN


def test_nginx_timing_matches_kit() -> None:
    settings = Settings.from_env(
        {k: str(v) for k, v in compose()["services"]["kit"]["environment"].items()}
    )
    idle = seconds(nginx_directive("keepalive_timeout"))
    # NGINX closes idle upstream connections before any runtime does (5 s on each), and before
    # a draining instance stops accepting.
    assert idle < 5
    assert idle < settings.drain_delay
    # kit answers a request past KIT_REQUEST_TIMEOUT itself, before NGINX gives up on it.
    assert seconds(nginx_directive("proxy_read_timeout")) > settings.request_timeout > 0
    # The same body limit as kit's, so both refuse the same bodies.
    assert nginx_directive("client_max_body_size") == f"{settings.max_body_size // 2**20}m"
    # Writes are never retried on another instance once one received them.
    assert "non_idempotent" not in nginx_directive("proxy_next_upstream")
    assert nginx_directive("proxy_set_header Forwarded") == '""'


@needs_nginx
def test_nginx_accepts_the_config(tmp_path: Path) -> None:
    (tmp_path / "kit.conf").write_text(site_config([8001, 8002], 8080))
    main = tmp_path / "nginx.conf"
    main.write_text(f"events {{}}\nhttp {{ include {tmp_path}/kit.conf; }}\npid {tmp_path}/pid;\n")
    result = subprocess.run(
        [NGINX, "-t", "-p", str(tmp_path), "-c", str(main), "-e", str(tmp_path / "error.log")],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
