"""kit's ready string types under the fuzzer: every request the document allows is accepted,
and every input that breaks the documented pattern or format is refused.

The fuzzing phase only: the coverage phase's boundary cases of these long patterns take minutes
on a busy machine, and tests/kit/test_formats.py checks the boundaries directly."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx

from tests.kit.openapi.server import Server
from tests.kit.openapi.test_openapi_services import needs_schemathesis, schemathesis

APP = "tests.kit.openapi.formats_app:app"


@needs_schemathesis
def test_what_the_schema_allows_is_accepted(
    running: Callable[[str], Server], tmp_path: Path
) -> None:
    server = running(APP)
    # positive_data_acceptance: a schema-valid body or query is answered 2xx, never 422
    schemathesis(
        f"{server.url}/openapi.json", server.url, tmp_path, "--checks", "all", phases="fuzzing"
    )


@needs_schemathesis
def test_what_the_schema_refuses_is_refused(
    running: Callable[[str], Server], tmp_path: Path
) -> None:
    server = running(APP)
    schemathesis(
        f"{server.url}/openapi.json",
        server.url,
        tmp_path,
        "--checks",
        "negative_data_rejection",
        "--mode",
        "negative",
        phases="fuzzing",
    )


def test_the_document_carries_ecma_patterns_and_formats(running: Callable[[str], Server]) -> None:
    document = httpx.get(f"{running(APP).url}/openapi.json").json()
    signup = document["components"]["schemas"]["Signup"]["properties"]
    assert signup["email"]["format"] == "email"
    assert signup["homepage"]["format"] == "uri"
    assert signup["invite"]["format"] == "uuid"
    for field in signup.values():
        assert field["pattern"].endswith(")$")
        assert "\\Z" not in field["pattern"]
        assert "(?=" not in field["pattern"]
