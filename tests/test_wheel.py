"""The built wheel: installed into a fresh virtualenv, ``kit bench --help`` works, and a run
that needs the checkout refuses in one line."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def run(*argv: str | Path, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    return subprocess.run(
        [str(a) for a in argv], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtualenv with only the wheel installed; kit's dependencies are borrowed from
    this environment through a .pth line (nothing is downloaded but the build backend)."""
    work = tmp_path_factory.mktemp("wheel")
    built = run(sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", work, ROOT, cwd=work)
    assert built.returncode == 0, built.stderr
    wheel = next(work.glob("kit_asgi-*.whl"))
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
def test_kit_bench_help_works_from_the_installed_wheel(installed: Path) -> None:
    where = run(
        installed / "bin" / "python", "-c", "import kit, bench; print(kit.__file__)", cwd=installed
    )
    assert where.stdout.startswith(str(installed)), where  # the wheel's kit, not the checkout's
    result = run(installed / "bin" / "kit", "bench", "--help", cwd=installed)
    assert result.returncode == 0, result.stderr
    assert "usage: kit bench" in result.stdout
    assert "--frameworks" in result.stdout


@pytest.mark.slow
def test_a_run_outside_a_checkout_is_one_line_exit_2(installed: Path) -> None:
    result = run(installed / "bin" / "kit", "bench", "--quick", cwd=installed)
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1
    assert "needs a kit checkout" in result.stderr
