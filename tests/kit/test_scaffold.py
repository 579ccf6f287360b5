"""`kit new`: name checks, no overwrites, --dry-run, --dir; and a generated service that
lints clean, passes its own tests next to the suite's, and answers on a real server."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import tomllib

from kit.scaffold import PlannedFile, ScaffoldError, main, render, write
from kit.testing import bearer, mint_token
from services.catalog.tests.servers import any_runtime, serving

REPO = Path(__file__).resolve().parents[2]
FILES = [
    "services/__init__.py",
    "services/shop/README.md",
    "services/shop/__init__.py",
    "services/shop/app.py",
    "services/shop/fuzz.toml",
    "services/shop/migrations/0001_init.sql",
    "services/shop/queries.py",
    "services/shop/schemas.py",
    "services/shop/settings.py",
    "services/shop/tests/__init__.py",
    "services/shop/tests/conftest.py",
    "services/shop/tests/test_shop_api.py",
]


def created(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A directory laid out like a kit checkout (services live in services/)."""
    (tmp_path / "services").mkdir()
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("Shop", "not a valid service name"),
        ("1shop", "not a valid service name"),
        ("my-shop", "not a valid service name"),
        ("_shop", "not a valid service name"),
        ("", "not a valid service name"),
        ("s" * 41, "too long"),
        ("class", "Python keyword"),
        ("kit", "reserved"),
        ("services", "reserved"),
        ("test", "reserved"),
        ("json", "standard library"),
        ("asyncio", "standard library"),
        ("pytest", "already an importable module"),
        ("msgspec", "already an importable module"),
    ],
)
def test_bad_names_are_refused(
    workdir: Path, capsys: pytest.CaptureFixture[str], name: str, reason: str
) -> None:
    assert main([name]) == 2
    err = capsys.readouterr().err
    assert err.startswith("kit new: ")
    assert reason in err
    assert err.count("\n") == 1
    assert created(workdir) == []


def test_usage_errors_are_one_line(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for argv in ([], ["shop", "--nope"], ["shop", "extra"]):
        with pytest.raises(SystemExit) as exited:
            main(argv)
        assert exited.value.code == 2
        err = capsys.readouterr().err
        assert err.startswith("kit new: ")
        assert err.count("\n") == 1
    assert created(workdir) == []


def test_failed_write_leaves_no_half_service(tmp_path: Path) -> None:
    target = tmp_path / "shop"
    twice = [PlannedFile(target / "app.py", "one"), PlannedFile(target / "app.py", "two")]
    with pytest.raises(ScaffoldError, match="refusing to overwrite"):
        write(twice, target)
    assert not target.exists()


def test_an_existing_parent_package_is_kept(workdir: Path) -> None:
    (workdir / "services" / "__init__.py").write_text("# ours\n")
    assert main(["shop"]) == 0
    assert (workdir / "services" / "__init__.py").read_text() == "# ours\n"


def test_dry_run_lists_and_writes_nothing(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["shop", "--dry-run"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out == [f"would create {path}" for path in FILES]
    assert created(workdir) == []


def test_never_overwrites(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["shop"]) == 0
    assert created(workdir) == FILES
    (workdir / "services/shop/app.py").write_text("# mine\n")
    capsys.readouterr()
    assert main(["shop"]) == 2
    assert (
        capsys.readouterr().err
        == "kit new: services/shop already exists; refusing to overwrite it\n"
    )
    assert main(["other", "--dir", "services/shop"]) == 2
    assert (workdir / "services/shop/app.py").read_text() == "# mine\n"


def test_dir_puts_it_anywhere(workdir: Path) -> None:
    assert main(["shop", "--dir", "apps/shop_v2"]) == 0
    assert (workdir / "apps/__init__.py").exists()
    readme = (workdir / "apps/shop_v2/README.md").read_text()
    assert "kit serve apps.shop_v2.app:app" in readme
    assert (workdir / "apps/shop_v2/tests/test_shop_api.py").exists()


def test_templates_leave_no_placeholder(tmp_path: Path) -> None:
    for planned in render("shop", tmp_path / "services" / "shop", tmp_path):
        assert "${" not in planned.content, planned.path


def test_readme_requests_name_routes_the_generated_app_has(tmp_path: Path) -> None:
    files = {
        p.path.name: p.content for p in render("shop", tmp_path / "services" / "shop", tmp_path)
    }
    routes = [
        (method.upper(), re.compile("^" + re.sub(r"\{[^}]+\}", "[^/]+", path) + "$"))
        for method, path in re.findall(r'@app\.(\w+)\(\s*"([^"]+)"', files["app.py"])
    ]
    readme = files["README.md"]
    requests = [("POST", path) for path in re.findall(r"-XPOST localhost:8000(/\S*)", readme)]
    requests += [("GET", path) for path in re.findall(r"^ROUTE=(\S+)", readme, re.MULTILINE)]
    assert ("GET", "/items/1") in requests
    assert ("POST", "/items") in requests
    for method, path in requests:
        assert any(m == method and p.match(path) for m, p in routes), (method, path)
    assert "$ROUTE" in readme
    assert "services/shop/fuzz.toml" in readme


def run(*command: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command, cwd=cwd, env=env, capture_output=True, text=True, timeout=120, check=False
    )


def test_generated_service_passes_its_tests_and_serves(
    tmp_path: Path, database_url: str, fresh_database_url: str
) -> None:
    """The whole promise, in a fresh project directory laid out like this repository."""
    env = {**os.environ, "DATABASE_URL": database_url}
    (tmp_path / "services").mkdir()
    made = run(sys.executable, "-m", "kit.cli", "new", "shop", cwd=tmp_path, env=env)
    assert made.returncode == 0, made.stderr
    assert "next: pytest services/shop && kit serve services.shop.app:app" in made.stdout

    service = str(tmp_path / "services")
    ruff = [sys.executable, "-m", "ruff"]
    config = [
        "--config",
        str(REPO / "pyproject.toml"),
        "--config",
        "lint.isort.known-first-party=['kit']",
    ]
    for check in (["check", *config, service], ["format", "--check", *config, service]):
        linted = run(*ruff, *check, cwd=tmp_path, env=env)
        assert linted.returncode == 0, linted.stdout + linted.stderr

    # the repository's pytest setup, and a suite test module with the same basename as the
    # service's: packages keep them apart, as `kit new x && make test` needs
    (tmp_path / "pytest.ini").write_text(
        "[pytest]\ntestpaths = tests services\npythonpath = .\nfilterwarnings = error\n"
    )
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_shop_api.py").write_text("def test_other() -> None:\n    pass\n")
    tested = run(
        sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", cwd=tmp_path, env=env
    )
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "9 passed" in tested.stdout

    log = tmp_path / "server.log"
    env["DATABASE_URL"] = fresh_database_url  # empty: the server applies shop's migration
    with (
        serving("services.shop.app:app", any_runtime(), cwd=tmp_path, log=log, env=env) as url,
        httpx.Client(base_url=url, timeout=10) as client,
    ):
        assert client.post("/items", json={"name": "first"}).status_code == 401
        client.headers.update(bearer(mint_token(scopes=["shop:write"])))  # the env's secret
        item = client.post("/items", json={"name": "first"})
        assert item.status_code == 201, item.text
        assert client.get(f"/items/{item.json()['id']}").json() == item.json()
        assert client.post("/items", json={"name": "first"}).status_code == 409
        assert "/items/{item_id}" in client.get("/openapi.json").json()["paths"]
        assert client.get("/docs").status_code == 200
        assert client.get("/metrics").status_code == 200


REPOSITORY_FILES = [
    ".ci/run",
    ".dockerignore",
    ".gitignore",
    "Dockerfile",
    "Makefile",
    "README.md",
    "compose.yaml",
    "demo/__init__.py",
    "demo/app.py",
    "demo/migrations/0001_init.sql",
    "demo/queries.py",
    "demo/schemas.py",
    "demo/settings.py",
    "k8s/config.yaml",
    "k8s/deployment.yaml",
    "k8s/hpa.yaml",
    "k8s/kustomization.yaml",
    "k8s/migrate-job.yaml",
    "k8s/pdb.yaml",
    "k8s/service.yaml",
    "nginx/demo.conf",
    "pyproject.toml",
    "tests/__init__.py",
    "tests/conftest.py",
    "tests/test_demo_api.py",
]


def test_outside_a_checkout_it_is_a_repository_of_its_own(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["demo", "--runtime", "uvicorn"]) == 0
    assert created(tmp_path / "demo") == REPOSITORY_FILES
    assert os.access(tmp_path / "demo" / ".ci" / "run", os.X_OK)
    assert capsys.readouterr().out.endswith("next: cd demo && make test && make run\n")
    project = tomllib.loads((tmp_path / "demo" / "pyproject.toml").read_text())
    [requirement] = project["project"]["dependencies"]
    assert requirement.startswith("kit-asgi[uvicorn]>=")
    # the server it depends on is the one it runs, wherever it runs
    assert "run: export KIT_RUNTIME ?= uvicorn\n" in (tmp_path / "demo/Makefile").read_text()
    assert "    KIT_RUNTIME=uvicorn \\\n" in (tmp_path / "demo/Dockerfile").read_text()
    assert "  KIT_RUNTIME: uvicorn\n" in (tmp_path / "demo/k8s/config.yaml").read_text()
    assert project["project"]["optional-dependencies"]["test"][0].startswith("kit-asgi[test]>=")
    assert project["tool"]["setuptools"]["package-data"] == {"demo": ["migrations/*.sql"]}
    tests = (tmp_path / "demo" / "tests" / "conftest.py").read_text()
    assert "from demo.app import app as service" in tests
    assert "class DemoSettings(ServiceSettings" in (tmp_path / "demo/demo/settings.py").read_text()
    for path in (tmp_path / "demo").rglob("*"):
        if path.is_file():
            assert "${" not in path.read_text().replace("${KIT_", "").replace("${PYTHON_", "")
    assert main(["demo"]) == 2  # never over an existing directory
    assert "demo already exists; refusing to overwrite it" in capsys.readouterr().err


def test_a_repository_dry_run_writes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["demo", "--dry-run"]) == 0
    assert list(tmp_path.iterdir()) == []
    listed = [line.split(" ", 2)[2] for line in capsys.readouterr().out.splitlines()]
    assert sorted(listed) == [f"demo/{name}" for name in REPOSITORY_FILES]


def test_an_unknown_runtime_is_refused_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exited:
        main(["demo", "--runtime", "tornado"])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("kit new: argument --runtime: invalid choice: 'tornado'")
    assert err.count("\n") == 1
    assert list(tmp_path.iterdir()) == []
