"""render_fortunes: the page TechEmpower's template gives, for any messages a table can hold."""

from __future__ import annotations

import html
import random

import pytest

from services.bench.fortunes import EXTRA_FORTUNE, render_fortunes


def by_the_template(rows: list[tuple[int, str]]) -> str:
    """Each row escaped and formatted on its own: what the page must equal, byte for byte."""
    fortunes = sorted([*rows, (0, EXTRA_FORTUNE)], key=lambda row: row[1])
    cells = "".join(f"<tr><td>{i}</td><td>{html.escape(m)}</td></tr>" for i, m in fortunes)
    return (
        "<!DOCTYPE html><html><head><title>Fortunes</title></head><body><table>"
        f"<tr><th>id</th><th>message</th></tr>{cells}</table></body></html>"
    )


AWKWARD = [
    (1, '<script>alert("This should not be displayed in a browser alert box.");</script>'),
    (2, "A bad random number generator: 1, 1, 1, 1, 1, 4.33e+67, 1, 1, 1"),
    (3, "フレームワークのベンチマーク"),
    (4, "100% of %s and %(name)s and {} and {0} stay as they are"),
    (5, "'quotes' & \"more\" &amp; already escaped"),
    (6, ""),
    (7, "Additional fortune added at request time."),  # ties keep the table's order
    (8, "line\nbreaks\tand\r\ncontrols\x01"),
]


def test_awkward_messages_render_as_the_template_says() -> None:
    assert render_fortunes(AWKWARD) == by_the_template(AWKWARD)
    assert render_fortunes([]) == by_the_template([])


def test_random_messages_render_as_the_template_says() -> None:
    alphabet = "ab <>&\"'%s{}\n\x00é漢😀"
    rng = random.Random(29)
    for _ in range(2000):
        rows = [
            (rng.randint(-5, 10**6), "".join(rng.choices(alphabet, k=rng.randint(0, 12))))
            for _ in range(rng.randint(0, 15))
        ]
        assert render_fortunes(rows) == by_the_template(rows)


def test_a_message_holding_a_nul_is_escaped_on_its_own() -> None:
    # PostgreSQL's text cannot hold one; a row from elsewhere still renders right
    rows = [(1, "a\x00<b>"), (2, "\x00\x00&")]
    assert render_fortunes(rows) == by_the_template(rows)


@pytest.mark.parametrize("row", [(1,), (1, "message", "extra")])
def test_a_row_that_is_not_id_and_message_is_refused(row: tuple[object, ...]) -> None:
    with pytest.raises((IndexError, ValueError)):  # never a page with shifted cells
        render_fortunes([(2, "b"), row])  # type: ignore[list-item]
