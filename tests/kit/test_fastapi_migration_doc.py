"""docs/fastapi-migration.md: its kit examples run, in order, as written."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path
from typing import Any

from starlette.testclient import TestClient

DOC = Path(__file__).resolve().parents[2] / "docs" / "fastapi-migration.md"
BLOCK = re.compile(r"^( *)```python\n(.*?)^\1```", re.MULTILINE | re.DOTALL)


def kit_blocks() -> list[str]:
    blocks = [textwrap.dedent(code) for _, code in BLOCK.findall(DOC.read_text())]
    return [code for code in blocks if "fastapi" not in code and "pydantic" not in code]


def test_the_kit_examples_run() -> None:
    blocks = kit_blocks()
    assert len(blocks) >= 9
    namespace: dict[str, Any] = {"__name__": "fastapi_migration_doc"}
    for code in blocks:
        exec(compile(code, str(DOC), "exec", dont_inherit=True), namespace)
    app = namespace["app"]  # the last one: the lifespan's, with the middleware and forms
    with TestClient(app) as client:
        response = client.post("/login", data={"username": "ada", "password": "pw"})
        assert response.json() == {"username": "ada"}
        assert "x-process-time" in response.headers
        response = client.post("/avatar", files={"file": ("a.png", b"png")})
        assert response.json() == {"name": "a.png", "size": 3}
        assert client.post("/login", data={"password": "pw"}).status_code == 422
