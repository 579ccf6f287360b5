"""Starlette's own test suite, from the sdist of the installed Starlette, run twice: as it is,
and with its ``Starlette`` swapped for ``kit.App`` (kit_swap.py). A test that passes on
Starlette and fails on kit must be listed, with its reason, in docs/starlette-compatibility.md;
a new difference fails this test, and so does a listed one that starts passing."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tarfile
import xml.etree.ElementTree as ET
from importlib.metadata import version
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
DOC = ROOT / "docs" / "starlette-compatibility.md"
CACHE = ROOT / ".kit" / "starlette-suite"
DOWNLOAD_TIMEOUT = 300  # seconds
RUN_TIMEOUT = 600  # seconds for one whole run of the suite (about 30 s on a quiet machine)
PER_TEST_TIMEOUT = 60
LISTED = re.compile(r"^- `(tests/[^`]+)`", re.MULTILINE)

pytestmark = [pytest.mark.starlette_suite, pytest.mark.timeout(2 * RUN_TIMEOUT + 2 * 60)]


def starlette_source() -> Path:
    """The installed Starlette's sdist, unpacked once under .kit/."""
    release = version("starlette")
    source = CACHE / f"starlette-{release}"
    if (source / "tests" / "conftest.py").exists():
        return source
    CACHE.mkdir(parents=True, exist_ok=True)
    pip = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--no-binary"]
    subprocess.run(
        [*pip, ":all:", f"starlette=={release}", "--dest", str(CACHE)],
        check=True,
        timeout=DOWNLOAD_TIMEOUT,
    )
    with tarfile.open(CACHE / f"starlette-{release}.tar.gz") as archive:
        archive.extractall(CACHE, filter="data")
    return source


def run_suite(source: Path, report: Path, *, on_kit: bool) -> dict[str, str]:
    """Each test's outcome (passed, failed, skipped) in one run of the suite."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KIT_", "PYTEST_"))}
    # The suite's own package is `tests` too: put its root first, and this directory (not
    # kit's tests package) on the path for the plugin.
    env["PYTHONPATH"] = os.pathsep.join([str(source), str(HERE)])
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:kit", "-p", "no:cacheprovider"]
    command += [f"--timeout={PER_TEST_TIMEOUT}", f"--junitxml={report}", "tests"]
    if on_kit:
        command[3:3] = ["-p", "kit_swap"]
    subprocess.run(
        command, cwd=source, env=env, timeout=RUN_TIMEOUT, stdout=subprocess.DEVNULL, check=False
    )
    outcomes: dict[str, str] = {}
    for case in ET.parse(report).iter("testcase"):
        path = case.get("classname", "").replace(".", "/")
        node = f"{path}.py::{case.get('name')}"
        kinds = {child.tag for child in case}
        if kinds & {"failure", "error"}:
            outcomes[node] = "failed"
        elif "skipped" in kinds:
            outcomes[node] = "skipped"
        else:
            outcomes[node] = "passed"
    return outcomes


def listed_differences() -> set[str]:
    return set(LISTED.findall(DOC.read_text()))


def test_listed_differences_are_written_once() -> None:
    listed = LISTED.findall(DOC.read_text())
    assert listed, "docs/starlette-compatibility.md lists no test"
    assert len(listed) == len(set(listed))


def test_starlette_suite_on_kit_app(tmp_path: Path) -> None:
    source = starlette_source()
    on_starlette = run_suite(source, tmp_path / "starlette.xml", on_kit=False)
    on_kit = run_suite(source, tmp_path / "kit.xml", on_kit=True)
    assert len(on_kit) == len(on_starlette) > 1000  # the same suite ran in full both times

    # What fails on Starlette too here (a root user's file permissions, say) tells nothing.
    differences = {
        node
        for node, outcome in on_kit.items()
        if outcome == "failed" and on_starlette.get(node) != "failed"
    }
    listed = listed_differences()
    new = sorted(differences - listed)
    fixed = sorted(node for node in listed - differences if on_kit.get(node) == "passed")
    assert not new, "fail on kit.App, not on Starlette, and are not listed in the docs:\n" + (
        "\n".join(new)
    )
    assert not fixed, "listed in the docs but pass on kit.App now (take them out):\n" + (
        "\n".join(fixed)
    )
