"""deploy/Dockerfile without Docker: its shape, and what it runs, run here for real."""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from kit.settings import Settings
from kit.testing import ServerProcess, free_port
from tests.deploy.conftest import DEPLOY, REPO

DOCKER_STOP_TIMEOUT = 10  # docker stop's default before SIGKILL


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    text = (DEPLOY / "Dockerfile").read_text()
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    joined = re.sub(r"\\\n\s*", " ", "\n".join(lines))
    result = []
    for line in joined.splitlines():
        if line.strip():
            keyword, _, rest = line.strip().partition(" ")
            result.append((keyword.upper(), rest.strip()))
    return result


def final_stage() -> list[tuple[str, str]]:
    steps = instructions()
    last_from = max(i for i, (keyword, _) in enumerate(steps) if keyword == "FROM")
    return steps[last_from:]


def image_environment() -> dict[str, str]:
    """The final stage's ENV, with its ARG defaults substituted (PATH left to the host)."""
    args: dict[str, str] = {}
    env: dict[str, str] = {}
    for keyword, rest in final_stage():
        if keyword == "ARG" and "=" in rest:
            name, _, default = rest.partition("=")
            args[name] = default
        elif keyword == "ENV":
            for pair in shlex.split(rest):
                name, _, value = pair.partition("=")
                if name != "PATH":
                    env[name] = re.sub(r"\$\{(\w+)\}", lambda m: args[m[1]], value)
    return env


def exec_form(keyword: str) -> list[str]:
    (rest,) = [rest for k, rest in final_stage() if k == keyword]
    if keyword == "HEALTHCHECK":
        rest = rest.partition("CMD ")[2]
    command = json.loads(rest)  # exec form: a JSON list, so kit is PID 1 and gets SIGTERM
    assert isinstance(command, list)
    return command


def test_shape() -> None:
    steps = instructions()
    assert steps[0][0] == "ARG"
    assert steps[0][1].startswith("PYTHON_VERSION=")  # before FROM: usable in every FROM
    froms = [rest for keyword, rest in steps if keyword == "FROM"]
    assert len(froms) >= 2  # build stage, then a runtime stage without the build's leftovers
    assert all(f.startswith("python:${PYTHON_VERSION}-slim") for f in froms)
    run_steps = " ".join(rest for keyword, rest in steps if keyword == "RUN")
    assert '".[${KIT_RUNTIME}]"' in run_steps  # the chosen runtime's extra only
    users = [rest for keyword, rest in final_stage() if keyword == "USER"]
    assert users
    assert users[-1] not in ("root", "0")
    assert exec_form("CMD")[:2] == ["kit", "serve"]
    assert "/healthz" in " ".join(exec_form("HEALTHCHECK"))
    settings = Settings.from_env(image_environment())
    assert settings.migrate is False  # replicas never migrate; `kit migrate` is its own step
    assert settings.host == "0.0.0.0"
    # docker stop sends SIGKILL after 10 s: the drain fits before it.
    assert settings.drain_delay + settings.graceful_timeout < DOCKER_STOP_TIMEOUT


def test_what_the_image_runs(tmp_path: Path, kit_template_databases: Any) -> None:
    """The image's `kit migrate`, then its CMD with its environment, then its HEALTHCHECK."""
    env = image_environment()
    url = kit_template_databases.create(None)
    env.update(DATABASE_URL=url, KIT_HOST="127.0.0.1", KIT_PORT=str(free_port()))
    environ = {**os.environ, **env}
    migrate = subprocess.run(
        [sys.executable, "-m", "kit.cli", "migrate"],  # compose's and the Job's command
        cwd=REPO,
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert migrate.returncode == 0, migrate.stderr
    command = exec_form("CMD")
    assert command == ["kit", "serve"]
    server = ServerProcess(
        env["KIT_APP"], env=env, cwd=REPO, log=tmp_path / "serve.log", ready_path="/readyz"
    )
    # The CMD exactly (the app comes from KIT_APP), on the port chosen above.
    server.command = [sys.executable, "-m", "kit.cli", *command[1:]]
    server.port = int(env["KIT_PORT"])
    server.url = f"http://127.0.0.1:{server.port}"
    with server:
        assert "applied" not in server.output()  # KIT_MIGRATE=0: the replica did not migrate
        healthcheck = exec_form("HEALTHCHECK")
        assert healthcheck[0] == "python"
        probe = [sys.executable, *healthcheck[1:]]
        probe[-1] = probe[-1].replace(":8000/", f":{server.port}/")
        assert subprocess.run(probe, timeout=10).returncode == 0
        started = time.monotonic()
        server.send_signal(signal.SIGTERM)
        assert server.proc.wait(DOCKER_STOP_TIMEOUT) == 0, server.output()
        assert time.monotonic() - started >= float(env["KIT_DRAIN_DELAY"])
    assert subprocess.run(probe, timeout=10, capture_output=True).returncode != 0
