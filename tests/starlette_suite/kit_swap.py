"""A pytest plugin that runs Starlette's own test suite with ``kit.App`` as its ``Starlette``.

Loaded with ``-p kit_swap`` (this directory on ``PYTHONPATH``) before the suite's modules are
imported, so their ``from starlette.applications import Starlette`` gets the subclass.
"""

from __future__ import annotations

import starlette.applications

import kit


class KitStarlette(kit.App):
    """kit's App under Starlette's name: nothing added, nothing turned off."""


def pytest_configure(config: object) -> None:
    starlette.applications.Starlette = KitStarlette  # type: ignore[misc]
