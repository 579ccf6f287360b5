"""TechEmpower's fortunes page: the extra row, the sort, the escaping and the exact template."""

from __future__ import annotations

from collections.abc import Iterable
from html import escape

EXTRA_FORTUNE = "Additional fortune added at request time."

PAGE_HEAD = (
    "<!DOCTYPE html><html><head><title>Fortunes</title></head><body>"
    "<table><tr><th>id</th><th>message</th></tr>"
)
ROW = "<tr><td>{}</td><td>{}</td></tr>"
PAGE_TAIL = "</table></body></html>"


def render_fortunes(rows: Iterable[tuple[int, str]]) -> str:
    """The page for ``(id, message)`` rows read from the database, plus the request-time one."""
    fortunes = [*rows, (0, EXTRA_FORTUNE)]
    fortunes.sort(key=lambda fortune: fortune[1])
    body = "".join([ROW.format(id_, escape(message)) for id_, message in fortunes])
    return PAGE_HEAD + body + PAGE_TAIL
