"""The built wheel: it holds ``kit`` and ``runtimes`` and nothing else at its top level;
installed into a fresh virtualenv, ``kit bench --help`` works, ``kit bench --app`` measures an
app outside any checkout, and the comparison, which needs the checkout, refuses in one line."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def run(
    *argv: str | Path, cwd: Path, timeout: float = 300, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    env = {
        **{k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")},
        **(env or {}),
    }
    return subprocess.run(
        [str(a) for a in argv], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("wheel")
    built = run(sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", work, ROOT, cwd=work)
    assert built.returncode == 0, built.stderr
    [path] = work.glob("kit_asgi-*.whl")
    return path


@pytest.fixture(scope="module")
def installed(wheel: Path) -> Path:
    """A fresh virtualenv with only the wheel installed; kit's dependencies are borrowed from
    this environment through a .pth line (nothing is downloaded but the build backend)."""
    work = wheel.parent
    env_dir = work / "venv"
    venv.EnvBuilder(with_pip=False).create(env_dir)
    python = env_dir / "bin" / "python"
    site = run(python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))", cwd=work)
    Path(site.stdout.strip(), "borrowed.pth").write_text(sysconfig.get_path("purelib") + "\n")
    install = [sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", "-q"]
    result = run(*install, wheel, cwd=work)
    assert result.returncode == 0, result.stderr
    return env_dir


@pytest.mark.slow
def test_the_wheel_ships_kit_and_runtimes_only(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
    top = {name.split("/")[0] for name in names if not name.split("/")[0].endswith(".dist-info")}
    assert top == {"kit", "runtimes"}
    assert "kit/benchmark/runner.py" in names
    assert "kit/benchmark/probe.py" in names
    assert not any(name.startswith("bench/") for name in names)


@pytest.mark.slow
def test_kit_bench_help_works_from_the_installed_wheel(installed: Path) -> None:
    where = run(
        installed / "bin" / "python", "-c", "import kit; print(kit.__file__)", cwd=installed
    )
    assert where.stdout.startswith(str(installed)), where  # the wheel's kit, not the checkout's
    missing = run(installed / "bin" / "python", "-c", "import bench.matrix", cwd=installed)
    assert "No module named 'bench'" in missing.stderr
    result = run(installed / "bin" / "kit", "bench", "--help", cwd=installed)
    assert result.returncode == 0, result.stderr
    assert "usage: kit bench" in result.stdout
    assert "--header NAME:VALUE" in result.stdout


MY_APP = """
from kit import App

app = App(title="mine", version="1.0")


@app.get("/ping")
async def ping() -> dict[str, str]:
    return {"ping": "pong"}
"""


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed")
def test_kit_bench_app_runs_from_the_wheel_without_bench(
    installed: Path, tmp_path: Path, database_url: str
) -> None:
    project = tmp_path / "project"
    project.mkdir()
    (project / "myservice.py").write_text(MY_APP)
    argv = ["--app", "myservice:app", "--path", "/ping", "--runtimes", "uvicorn"]
    argv += ["--connections", "4", "--duration", "1", "--warmup", "0", "--out", "results"]
    env = {"DATABASE_URL": database_url}
    result = run(installed / "bin" / "kit", "bench", *argv, cwd=project, env=env)
    assert result.returncode == 0, result.stderr
    written = [Path(line) for line in result.stdout.splitlines()]
    assert written[0].parent == project / "results"
    assert written[0].name.endswith(".json")
    report = written[1].read_text()
    assert "# kit benchmark: myservice" in report
    assert "| uvicorn | myservice |" in report


@pytest.mark.slow
def test_a_run_outside_a_checkout_is_one_line_exit_2(installed: Path) -> None:
    result = run(installed / "bin" / "kit", "bench", "--quick", cwd=installed)
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1
    assert "needs a kit checkout" in result.stderr
