"""Generated handlers (hypothesis): parameters from every source, of several types and
optionalities, a body, dependencies of every kind (async, sync, generators, resources,
function-scoped, with sub-dependencies and parameters of their own), guards, and failures at
each stage; each asked generated requests in every shape its plan can take. Status, headers,
body, what was raised and the order of every open and close must be the general shape's."""

from __future__ import annotations

import textwrap
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from kit import App, Settings
from tests.kit.differential import Request, differences

events: list[str] = []

TYPES = {  # annotation → (a valid value, an invalid one)
    "int": ("7", "seven"),
    "str": ("text", None),
    "float": ("1.5", "x"),
    "bool": ("true", "maybe"),
    "uuid.UUID": ("12345678-1234-5678-1234-567812345678", "not-a-uuid"),
    "list[int]": ("3", "three"),
}
SOURCES = ("path", "query", "header", "cookie")
MARKERS = {"path": "Path", "query": "Query", "header": "Header", "cookie": "Cookie"}
KINDS = ("async", "sync", "asyncgen", "gen", "resource", "resource_function", "asyncgen_function")
FAILS = (None, None, None, None, "before", "after")
# request-only async providers and resources take the steps shape: drawn more often
STEP_KINDS = ("async", "asyncgen", "resource", "resource_function", "asyncgen_function")

param = st.fixed_dictionaries(
    {
        "source": st.sampled_from(SOURCES),
        "type": st.sampled_from(list(TYPES)),
        "optional": st.sampled_from(("required", "none", "default")),
    }
)
dependency = st.fixed_dictionaries(
    {
        "kind": st.sampled_from(STEP_KINDS) | st.sampled_from(KINDS),
        "request": st.booleans(),
        "param": st.sampled_from((False, False, True)),
        "fail": st.sampled_from(FAILS),
        "sub": st.none() | st.none() | st.sampled_from(KINDS),
        "cache": st.sampled_from((True, True, False)),
    }
)
signature = st.fixed_dictionaries(
    {
        "params": st.lists(param, max_size=4),
        "body": st.sampled_from((None, None, "required", "optional")),
        "deps": st.lists(dependency, max_size=3),
        # explicit (guards=[...]) or lifted (a handler parameter run before the body, as a
        # Security dependency is), failing or not
        "guard": st.sampled_from((None, None, "pass", "fail", "lifted", "lifted-fail")),
        "guard_kind": st.sampled_from(STEP_KINDS) | st.sampled_from(KINDS),
        "guard_cache": st.sampled_from((True, True, False)),
        "guard_again": st.sampled_from((False, False, True)),  # also a plain dependency
        "handler": st.sampled_from(("async", "async", "sync")),
        "fail": st.sampled_from((None, None, None, "http", "crash")),
        "background": st.sampled_from((False, False, False, True)),
        "text": st.booleans(),
        "request": st.booleans(),
    }
)


def provider(name: str, kind: str, fail: str | None, args: str) -> str:
    """Source of one provider ``name`` of ``kind``, failing ``before`` it gives its value or
    ``after`` (in its cleanup)."""
    before = f"raise HTTPException(418, 'no {name}')" if fail == "before" else "pass"
    after = f"raise RuntimeError('{name} cleanup')" if fail == "after" else "pass"
    if kind.startswith("resource"):
        return f"""
        async def open_{name}(request: Request) -> Any:
            events.append('open:{name}')
            {before}
            return '{name}', None
        async def close_{name}(state: Any, exc: BaseException | None) -> None:
            events.append(f'close:{name}:{{type(exc).__name__ if exc else None}}')
            {after}
        {name} = resource(open_{name}, close_{name}, name='{name}')
        """
    if kind in ("async", "sync"):
        prefix = "async " if kind == "async" else ""
        return f"""
        {prefix}def {name}({args}) -> str:
            events.append('call:{name}')
            {before}
            return '{name}'
        """
    prefix = "async " if kind.startswith("asyncgen") else ""
    return f"""
    {prefix}def {name}({args}) -> Any:
        events.append('open:{name}')
        {before}
        try:
            yield '{name}'
        except BaseException as exc:
            events.append(f'close:{name}:{{type(exc).__name__}}')
            raise
        events.append('close:{name}:None')
        {after}
    """


def build(spec: dict[str, Any]) -> tuple[App, list[Request]]:
    lines = []
    handler_args: list[str] = []
    path = "/r"
    valid: dict[str, tuple[str, str, str, str | None]] = {}  # name → where, alias, good, bad
    for i, p in enumerate(spec["params"]):
        name, source, tp = f"p{i}", p["source"], p["type"]
        if source == "path":
            tp = "str" if tp == "list[int]" else tp
            path += f"/{{{name}}}"
            handler_args.append(f"{name}: Annotated[{tp}, Path()]")
        else:
            if tp == "list[int]" and source == "cookie":
                tp = "int"
            annotation = f"Annotated[{tp}, {MARKERS[source]}()]"
            if p["optional"] == "none":
                annotation = f"Annotated[{tp} | None, {MARKERS[source]}()]"
                handler_args.append(f"{name}: {annotation} = None")
            elif p["optional"] == "default":
                default = {"int": "1", "float": "0.5", "bool": "False", "str": "'d'"}.get(tp)
                default = default or ("[]" if tp == "list[int]" else "None")
                handler_args.append(f"{name}: {annotation} = {default}")
            else:
                handler_args.append(f"{name}: {annotation}")
        good, bad = TYPES[tp]
        alias = name if source != "header" else name.lower()
        valid[name] = (source, alias, good, bad)
    for i, d in enumerate(spec["deps"]):
        name = f"d{i}"
        args = []
        if d["request"] and not d["kind"].startswith("resource"):
            args.append("request: Request")
        if d["param"] and not d["kind"].startswith("resource"):
            args.append(f"q{name}: int | None = None")
            valid[f"q{name}"] = ("query", f"q{name}", "5", "five")
        if d["sub"] is not None and not d["kind"].startswith("resource"):
            lines.append(provider(f"s{name}", d["sub"], None, "request: Request"))
            scope = ", scope='function'" if d["sub"].endswith("function") else ""
            args.append(f"sub: Annotated[str, Depends(s{name}{scope})]")
        lines.append(provider(name, d["kind"], d["fail"], "*, " + ", ".join(args) if args else ""))
        scope = ", scope='function'" if d["kind"].endswith("function") else ""
        cache = "" if d["cache"] else ", use_cache=False"
        handler_args.append(f"v{name}: Annotated[str, Depends({name}{scope}{cache})]")
    if spec["body"] == "required":
        handler_args.append("body: Item")
    elif spec["body"] == "optional":
        handler_args.append("body: Annotated[Item | None, Body()] = None")
    if spec["request"]:
        handler_args.append("request: Request")
    if spec["background"]:
        handler_args.append("tasks: BackgroundTasks")
    guard = ""
    if spec["guard"] is not None:
        kind = spec["guard_kind"]
        args = "" if kind.startswith("resource") else "request: Request"
        fail = "before" if spec["guard"].endswith("fail") else None
        lines.append(provider("g", kind, fail, args))
        scope = ", scope='function'" if kind.endswith("function") else ""
        cache = "" if spec["guard_cache"] else ", use_cache=False"
        if spec["guard"].startswith("lifted"):
            handler_args.append(f"vg: Annotated[str, Before(g{scope}{cache})]")
        else:
            guard = f", guards=[Depends(g{scope}{cache})]"
        if spec["guard_again"]:
            handler_args.append(f"vg2: Annotated[str, Depends(g{scope})]")
    fail = {
        None: "pass",
        "http": "raise HTTPException(409, 'taken')",
        "crash": "raise RuntimeError('handler')",
    }[spec["fail"]]
    prefix = "async " if spec["handler"] == "async" else ""
    method = "post" if spec["body"] else "get"
    text = ", response_class=PlainTextResponse" if spec["text"] else ""
    result = (
        "repr(sorted(seen.items()))" if spec["text"] else "{k: repr(v) for k, v in seen.items()}"
    )
    background = "tasks.add_task(events.append, 'background')" if spec["background"] else "pass"
    lines.append(
        f"""
        @app.{method}({path!r}{guard}{text})
        {prefix}def handler({"*, " if handler_args else ""}{", ".join(handler_args)}) -> Any:
            events.append('handler')
            seen = {{k: v for k, v in locals().items() if k not in ('request', 'tasks')}}
            {background}
            {fail}
            return {result}
        """
    )
    app = App(settings=Settings.from_env({}, metrics=False, access_log=False, docs=False))
    namespace: dict[str, Any] = {"app": app, "events": events}
    exec(
        "import uuid\n"
        "from typing import Annotated, Any\n"
        "import msgspec\n"
        "from kit import BackgroundTasks, Body, Cookie, Depends, Header, HTTPException, Path\n"
        "from kit import PlainTextResponse, Query, Request\n"
        "from kit.di import resource\n"
        "class Before(Depends):\n    before_body = True\n"
        "class Item(msgspec.Struct):\n    name: str\n    size: int = 0\n"
        + "\n".join(textwrap.dedent(line) for line in lines),
        namespace,
    )
    return app, requests_for(path, valid, method, spec["body"])


def requests_for(
    path: str, valid: dict[str, tuple[str, str, str, str | None]], method: str, body: Any
) -> list[Request]:
    requests = []
    for choice in ("good", "bad", "absent"):
        url, query, headers, cookies = path, {}, {}, []
        for name, (source, alias, good, bad) in valid.items():
            value = good if choice == "good" or bad is None else bad
            if source == "path":
                url = url.replace(f"{{{name}}}", value)
            elif choice == "absent":
                continue
            elif source == "query":
                query[alias] = value
            elif source == "header":
                headers[alias] = value
            else:
                cookies.append(f"{alias}={value}")
        if cookies:
            headers["cookie"] = "; ".join(cookies)
        bodies: list[bytes | None] = [None]
        if body:
            bodies = [b'{"name": "n", "size": 2}', b'{"size": "big"}', b"{", None]
        for content in bodies:
            sent = dict(headers)
            if content is not None:
                sent["content-type"] = "application/json"
            requests.append(Request(method.upper(), url, query, sent, content))
    return requests


@settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(signature)
def test_generated_handlers_answer_alike_in_every_shape(spec: dict[str, Any]) -> None:
    app, requests = build(spec)
    with TestClient(app) as client:
        assert differences(app, client, requests, events) == []
