"""TechEmpower's fortunes page: the extra row, the sort, the escaping and the exact template."""

from __future__ import annotations

from collections.abc import Iterable
from html import escape
from itertools import chain
from operator import itemgetter

EXTRA_FORTUNE = "Additional fortune added at request time."

PAGE_HEAD = (
    "<!DOCTYPE html><html><head><title>Fortunes</title></head><body>"
    "<table><tr><th>id</th><th>message</th></tr>"
)
ROW = "<tr><td>{}</td><td>{}</td></tr>"
PAGE_TAIL = "</table></body></html>"

# ROW for the % operator, which fills every row of the page in one call; the head and tail
# hold no "%" of their own
_ROW = ROW.replace("{}", "%s")
_PAGE_HEAD = PAGE_HEAD.replace("%", "%%")
_PAGE_TAIL = PAGE_TAIL.replace("%", "%%")
_EXTRA = (0, EXTRA_FORTUNE)
_by_message = itemgetter(1)
# Between the messages escaped as one string: PostgreSQL's text holds no NUL, and escape()
# leaves it alone, so splitting there gives back each message escaped.
_SEPARATOR = "\0"


def render_fortunes(rows: Iterable[tuple[int, str]]) -> str:
    """The page for ``(id, message)`` rows read from the database, plus the request-time one,
    sorted by message, each message HTML-escaped."""
    fortunes = [*rows, _EXTRA]
    fortunes.sort(key=_by_message)
    cells: list[object] = list(chain.from_iterable(fortunes))  # id, message, id, message...
    if len(cells) != 2 * len(fortunes):
        raise ValueError("each fortune row must be (id, message)")
    messages: list[str] = cells[1::2]  # type: ignore[assignment]
    escaped = escape(_SEPARATOR.join(messages)).split(_SEPARATOR)
    if len(escaped) != len(messages):  # a message held the separator itself
        escaped = [escape(message) for message in messages]
    cells[1::2] = escaped
    return (_PAGE_HEAD + _ROW * len(fortunes) + _PAGE_TAIL) % tuple(cells)
