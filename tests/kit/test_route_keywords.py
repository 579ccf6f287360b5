"""The route decorators' keywords are typed (RouteKeywords): editors complete them and mypy
refuses a misspelled one or a wrong type; they stay the fields of RouteOptions."""

from __future__ import annotations

import dataclasses
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from kit import App
from kit.routing import RouteKeywords, RouteOptions, Router

REPO = Path(__file__).resolve().parents[2]
MYPY = shutil.which("mypy", path=str(Path(sys.executable).parent))


def test_the_keywords_are_the_route_options() -> None:
    assert set(RouteKeywords.__annotations__) == {f.name for f in dataclasses.fields(RouteOptions)}


@pytest.mark.parametrize("owner", [App, Router])
def test_every_decorator_has_a_docstring(owner: type) -> None:
    for name in ("api_route", "get", "post", "put", "patch", "delete", "add_api_route"):
        assert "RouteKeywords" in (getattr(owner, name).__doc__ or ""), name


@pytest.mark.skipif(MYPY is None, reason="mypy is missing")
def test_mypy_refuses_a_misspelled_keyword_or_a_wrong_type(tmp_path: Path) -> None:
    snippet = tmp_path / "routes.py"
    snippet.write_text(
        textwrap.dedent(
            """
            from kit import App

            app = App()


            @app.post("/items", status_code=201, tags=["items"], responses={409: "taken"})
            async def create() -> None: ...


            @app.get("/items", status_cod=200)
            async def read() -> None: ...


            @app.delete("/items", max_body_size="1k")
            async def delete() -> None: ...
            """
        )
    )
    assert MYPY is not None
    result = subprocess.run(
        [MYPY, "--strict", str(snippet)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    errors = [line for line in result.stdout.splitlines() if ": error:" in line]
    assert len(errors) == 2, result.stdout
    assert 'Unexpected keyword argument "status_cod" for "get" of "App"' in errors[0]
    assert '"delete" of "App" has incompatible type "str"' in errors[1]
