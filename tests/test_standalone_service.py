"""kit as a product, end to end: the wheel, installed with its ``test`` extra and a runtime into a
fresh virtualenv outside the checkout, runs ``kit new demo`` in an empty directory; there
``make test`` passes and ``make run`` answers /readyz (each bootstrapping the repository's own
.venv, kit taken from the wheel through PIP_FIND_LINKS), and the generated deploy files pass
hadolint, kubernetes-validate --strict (on ``kubectl kustomize`` output when kubectl is
installed, else on each manifest), ``nginx -t`` and the compose-spec JSON schema.

tests/data/compose-spec.json is schema/compose-spec.json of github.com/compose-spec/compose-spec
(commit 170098b, Apache-2.0): there is no Docker engine or compose plugin to ask, so compose.yaml
is validated against the schema and its services, dependencies and health checks are checked
as data.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from kit.testing import free_port

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
COMPOSE_SCHEMA = ROOT / "tests" / "data" / "compose-spec.json"
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
RUNTIME = "uvicorn" if shutil.which("granian", path=str(BIN)) is None else "granian"

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(900)]


def run(
    *argv: str | Path, cwd: Path, env: dict[str, str], timeout: float = 400
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(a) for a in argv], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )


def outside_env(wheels: Path) -> dict[str, str]:
    """This environment without the checkout's venv, kit's wheel first in pip's find-links;
    without the variables of a `make` this suite may run under (a nested make would print
    its directory after the test summary)."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("PYTHONPATH", "VIRTUAL_ENV", "DATABASE_URL", "MAKEFLAGS", "MFLAGS")
        and not k.startswith(("KIT_", "PYTEST_", "MAKELEVEL"))
    }
    env["PIP_FIND_LINKS"] = " ".join(filter(None, [str(wheels), os.environ.get("PIP_FIND_LINKS")]))
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    env["PATH"] = os.pathsep.join(
        p for p in env.get("PATH", "").split(os.pathsep) if Path(p) != BIN
    )
    return env


@pytest.fixture(scope="module")
def work() -> Iterator[Path]:
    # Outside the checkout; o+x so the embedded Postgres's own system user can reach its binaries
    # in the generated repository's .venv (kit refuses to start it otherwise when run as root).
    directory = Path(tempfile.mkdtemp(prefix="kit-standalone-"))
    directory.chmod(0o711)
    try:
        yield directory
    finally:
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(scope="module")
def repository(work: Path) -> tuple[Path, dict[str, str]]:
    """``kit new demo`` run by the installed wheel in an empty directory: (repository, env)."""
    wheels = work / "wheels"
    env = outside_env(wheels)
    built = run(sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", wheels, ROOT,
                cwd=work, env=env)  # fmt: skip
    assert built.returncode == 0, built.stderr
    assert [p.name.split("-")[0] for p in wheels.glob("*.whl")] == ["kit_asgi"]
    venv = work / "venv"
    created = run(sys.executable, "-m", "venv", venv, cwd=work, env=env)
    assert created.returncode == 0, created.stderr
    installed = run(venv / "bin" / "pip", "install", "-q", f"kit-asgi[test,{RUNTIME}]",
                    cwd=work, env=env)  # fmt: skip
    assert installed.returncode == 0, installed.stderr
    empty = work / "project"
    empty.mkdir()
    new = run(venv / "bin" / "kit", "new", "demo", "--runtime", RUNTIME, cwd=empty, env=env)
    assert new.returncode == 0, new.stderr
    assert "next: cd demo && make test && make run" in new.stdout
    return empty / "demo", env


def test_make_test_passes_and_make_run_answers_readyz(
    repository: tuple[Path, dict[str, str]],
) -> None:
    demo, env = repository
    tested = run("make", "test", cwd=demo, env=env)
    assert tested.returncode == 0, tested.stdout[-3000:] + tested.stderr[-3000:]
    summary = tested.stdout.strip().splitlines()[-1]
    assert re.fullmatch(r"=+ \d+ passed in [\d.]+s =+", summary), tested.stdout[-2000:]
    # the development database lives at the repository's root, ignored by git; never inside
    # the service's package
    assert (demo / ".kit" / "pgdata").is_dir()
    assert not (demo / "demo" / ".kit").exists()
    assert ".kit/" in (demo / ".gitignore").read_text().splitlines()

    port = free_port()
    log = (demo / "run.log").open("w")
    server = subprocess.Popen(
        ["make", "run"],
        cwd=demo,
        env={**env, "KIT_PORT": str(port)},
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 120
        answer = None
        while time.monotonic() < deadline and server.poll() is None:
            try:
                answer = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2)
                if answer.status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        output = (demo / "run.log").read_text()
        assert answer is not None, output[-3000:]
        assert answer.status_code == 200, output[-3000:]
        assert answer.json() == {"status": "ready", "database": "up"}
        assert f"serving demo.app:app on {RUNTIME}" in output
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
        log.close()


def test_generated_deploy_files_pass_their_checkers(
    repository: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    demo, _ = repository
    files = {p.relative_to(demo).as_posix() for p in demo.rglob("*") if p.is_file()}
    for expected in ("pyproject.toml", "Makefile", "Dockerfile", "compose.yaml", "README.md",
                     ".gitignore", ".dockerignore", ".ci/run", "k8s/kustomization.yaml",
                     "nginx/demo.conf", "demo/app.py", "demo/settings.py",
                     "demo/migrations/0001_init.sql", "tests/test_demo_api.py"):  # fmt: skip
        assert expected in files
    assert os.access(demo / ".ci" / "run", os.X_OK)
    readme = (demo / "README.md").read_text()
    assert readme.split("```sh\n", 1)[1].startswith("make run ")
    assert "\nmake test " in readme.split("```", 2)[1]

    hadolint = run(
        BIN / "hadolint", "--no-color", demo / "Dockerfile", cwd=demo, env=os.environ.copy()
    )
    assert hadolint.returncode == 0, hadolint.stdout + hadolint.stderr

    check_kubernetes(demo)
    check_nginx(demo, tmp_path)
    check_compose(demo)


def check_kubernetes(demo: Path) -> None:
    import kubernetes_validate

    kustomization = yaml.safe_load((demo / "k8s" / "kustomization.yaml").read_text())
    manifests = sorted(p.name for p in (demo / "k8s").glob("*.yaml"))
    assert sorted(kustomization["resources"]) == [m for m in manifests if m != "kustomization.yaml"]
    kubectl = shutil.which("kubectl")
    if kubectl is not None:  # the kustomize base as a cluster would get it
        built = run(kubectl, "kustomize", demo / "k8s", cwd=demo, env=os.environ.copy())
        assert built.returncode == 0, built.stderr
        documents = [d for d in yaml.safe_load_all(built.stdout) if d]
    else:
        documents = [
            d
            for name in kustomization["resources"]
            for d in yaml.safe_load_all((demo / "k8s" / name).read_text())
            if d
        ]
    kinds = sorted(d["kind"] for d in documents)
    assert kinds == ["ConfigMap", "Deployment", "HorizontalPodAutoscaler", "Job",
                     "PodDisruptionBudget", "Secret", "Service"]  # fmt: skip
    version = kubernetes_validate.latest_version()
    for document in documents:
        kubernetes_validate.validate(document, version, strict=True)
    config = next(d for d in documents if d["kind"] == "ConfigMap")["data"]
    assert config["KIT_APP"] == "demo.app:app"


def check_nginx(demo: Path, tmp_path: Path) -> None:
    # The compose network's name (app) does not resolve here: the check runs on loopback.
    site = (demo / "nginx" / "demo.conf").read_text()
    assert "server app:8000 " in site
    (tmp_path / "demo.conf").write_text(site.replace("server app:8000 ", "server 127.0.0.1:8000 "))
    main = tmp_path / "nginx.conf"
    main.write_text(
        f"events {{}}\nhttp {{ include {tmp_path}/demo.conf; }}\npid {tmp_path}/nginx.pid;\n"
    )
    if not Path(NGINX).is_file():
        pytest.skip("nginx is not installed (.ci/run installs it as root)")
    result = run(NGINX, "-t", "-p", tmp_path, "-c", main, "-e", tmp_path / "error.log",
                 cwd=tmp_path, env=os.environ.copy())  # fmt: skip
    assert result.returncode == 0, result.stderr


def check_compose(demo: Path) -> None:
    import jsonschema

    compose: dict[str, Any] = yaml.safe_load((demo / "compose.yaml").read_text())
    schema = json.loads(COMPOSE_SCHEMA.read_text())
    errors = [e.message for e in jsonschema.Draft7Validator(schema).iter_errors(compose)]
    assert errors == []
    services = compose["services"]
    assert set(services) == {"postgres", "pgbouncer", "migrate", "app", "nginx"}
    assert "healthcheck" in services["postgres"]
    assert "healthcheck" in services["pgbouncer"]
    assert services["pgbouncer"]["environment"]["POOL_MODE"] == "transaction"
    for name, service in services.items():
        for dependency, condition in service.get("depends_on", {}).items():
            assert dependency in services, (name, dependency)
            if condition["condition"] == "service_healthy":  # a health check it can pass
                assert "healthcheck" in services[dependency] or dependency == "app", dependency
    # the app's health check is the image's HEALTHCHECK; migrations once, straight to Postgres
    assert "HEALTHCHECK " in (demo / "Dockerfile").read_text()
    assert services["migrate"]["command"] == ["kit", "migrate"]
    assert "@postgres:" in services["migrate"]["environment"]["DATABASE_URL"]
    app = services["app"]
    assert app["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert "@pgbouncer:" in app["environment"]["DATABASE_URL"]
    assert app["environment"]["KIT_DB_PGBOUNCER"] == "1"
    assert app["deploy"]["replicas"] > 1
    source = services["nginx"]["volumes"][0].split(":")[0]
    assert (demo / source).is_file()
