"""``kit new NAME``: a service rendered from the plain templates in kit/templates/.

Inside a kit checkout the service is a package, ``services/NAME/`` (templates/service).
Anywhere else it is a repository of its own, ``./NAME/``: the same package and its tests, plus
pyproject.toml, Makefile, Dockerfile, compose.yaml, k8s/ and a CI script (templates/repository).
"""

from __future__ import annotations

import argparse
import keyword
import os
import re
import shutil
import sys
from dataclasses import dataclass
from importlib import metadata, resources
from importlib.util import find_spec
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

if TYPE_CHECKING:
    from importlib.resources.abc import Traversable

TEMPLATES = "service"
REPOSITORY = "repository"
# Only in a service inside a kit checkout: the repository's README and kit's own fuzz check
CHECKOUT_ONLY = frozenset({"README.md", "fuzz.toml"})
DOT = "dot-"  # a template named dot-gitignore renders as .gitignore (wheels drop dotfiles)
EXECUTABLE = frozenset({".ci/run"})
DISTRIBUTION = "kit-asgi"
DEFAULT_RUNTIME = "granian"
SUFFIX = ".tmpl"
PLACEHOLDER = re.compile(r"\$\{([a-z_]+)\}")
VALID_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
MAX_NAME = 40
# Names that would shadow the project's own top-level packages or confuse the tooling.
RESERVED = frozenset(
    {"kit", "runtimes", "services", "bench", "tests", "test", "app", "conftest", "docs", "site"}
)


class ScaffoldError(Exception):
    """The service cannot be generated; the message is one line for the user."""


def fill(text: str, values: dict[str, str]) -> str:
    """Replace ``${name}`` placeholders; SQL's ``$1`` and shell's ``$VAR`` stay as written.

    An unknown placeholder is a KeyError: a template bug the tests catch.
    """
    return PLACEHOLDER.sub(lambda match: values[match.group(1)], text)


@dataclass(frozen=True)
class PlannedFile:
    path: Path
    content: str
    shared: bool = False  # a parent package's __init__.py: fine if it appeared meanwhile
    executable: bool = False


def check_name(name: str) -> None:
    """Refuse a NAME that is not a plain lowercase identifier or that clashes with a module."""
    if not VALID_NAME.match(name):
        raise ScaffoldError(
            f"{name!r} is not a valid service name: use lowercase letters, digits and _, "
            "starting with a letter"
        )
    if len(name) > MAX_NAME:
        raise ScaffoldError(f"{name!r} is too long: at most {MAX_NAME} characters")
    if keyword.iskeyword(name):
        raise ScaffoldError(f"{name!r} is a Python keyword; choose another name")
    if name in RESERVED:
        raise ScaffoldError(f"{name!r} is reserved by the kit; choose another name")
    if name in sys.stdlib_module_names or name in sys.builtin_module_names:
        raise ScaffoldError(f"{name!r} is a standard library module; choose another name")
    if find_spec(name) is not None:
        raise ScaffoldError(f"{name!r} is already an importable module; choose another name")


def module_path(target: Path, cwd: Path) -> str | None:
    """The dotted module of ``target`` when it is importable from ``cwd`` (else None)."""
    try:
        parts = target.resolve().relative_to(cwd.resolve()).parts
    except ValueError:
        return None
    if not parts or not all(part.isidentifier() for part in parts):
        return None
    return ".".join(parts)


def _templates(name: str = TEMPLATES) -> Traversable:
    return resources.files("kit").joinpath("templates", name)


def _walk(directory: Traversable, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found: list[tuple[str, ...]] = []
    for entry in sorted(directory.iterdir(), key=lambda e: e.name):
        if entry.is_dir():
            found += _walk(entry, (*prefix, entry.name))
        elif entry.name.endswith(SUFFIX):
            found.append((*prefix, entry.name))
    return found


def is_checkout(directory: Path) -> bool:
    """Whether ``directory`` is laid out like a kit checkout: services live in its services/."""
    return (directory / "services").is_dir() or (directory / "kit" / "__init__.py").is_file()


def kit_requirement(extras: str) -> str:
    """kit's distribution with ``extras``, pinned to this release's minor series."""
    try:
        version = metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:  # run from a checkout that is not installed
        version = "0.1.0"
    major, minor = (int(part) for part in re.findall(r"\d+", version)[:2])
    upper = f"{major}.{minor + 1}" if major == 0 else f"{major + 1}"
    return f"{DISTRIBUTION}[{extras}]>={version},<{upper}"


def _values(
    name: str, module: str, display: str, *, standalone: bool, runtime: str
) -> dict[str, str]:
    return {
        "name": name,
        "title": name.replace("_", " ").title(),
        "class_name": name.title().replace("_", ""),
        "prefix": f"{name.upper()}_",
        "module": module,
        "path": display,
        "app_package": f"{name}." if standalone else "..",
        "runtime": runtime,
        "kit_requirement": kit_requirement(runtime),
        "kit_test_requirement": kit_requirement("test"),
    }


def _render_tree(root: Traversable, values: dict[str, str]) -> list[tuple[str, str]]:
    """(relative path, content) of every template under ``root``, rendered."""
    rendered = []
    for parts in _walk(root):
        relative = fill("/".join(parts)[: -len(SUFFIX)], values)
        relative = "/".join(
            "." + part[len(DOT) :] if part.startswith(DOT) else part for part in relative.split("/")
        )
        rendered.append((relative, fill(root.joinpath(*parts).read_text(encoding="utf-8"), values)))
    return rendered


def render(name: str, target: Path, cwd: Path) -> list[PlannedFile]:
    """Every file of the new service package (inside a kit checkout), rendered; nothing is
    written."""
    module = module_path(target, cwd)
    display = os.path.relpath(target, cwd) if module is not None else str(target)
    values = _values(name, module or name, display, standalone=False, runtime=DEFAULT_RUNTIME)
    planned = [
        PlannedFile(target / relative, content)
        for relative, content in _render_tree(_templates(), values)
    ]
    return [*_parent_packages(target, cwd, module), *planned]


def render_repository(name: str, target: Path, runtime: str = DEFAULT_RUNTIME) -> list[PlannedFile]:
    """Every file of a standalone service repository at ``target``: the package in
    ``target/NAME/``, its tests in ``target/tests/``, the repository's files at the root."""
    values = _values(name, name, "tests", standalone=True, runtime=runtime)
    planned = []
    for relative, content in _render_tree(_templates(), values):
        if relative in CHECKOUT_ONLY:
            continue
        where = target / relative if relative.startswith("tests/") else target / name / relative
        planned.append(PlannedFile(where, content))
    for relative, content in _render_tree(_templates(REPOSITORY), values):
        planned.append(PlannedFile(target / relative, content, executable=relative in EXECUTABLE))
    return planned


def _parent_packages(target: Path, cwd: Path, module: str | None) -> list[PlannedFile]:
    """Empty ``__init__.py`` for parent directories (``services/``) that lack one, so that
    pytest imports the service's tests by their full dotted names, never by bare basenames."""
    if module is None:
        return []
    missing = []
    parent = target.parent
    while parent.resolve() != cwd.resolve():
        init = parent / "__init__.py"
        if not init.exists():
            missing.append(PlannedFile(init, "", shared=True))
        parent = parent.parent
    return missing[::-1]


def write(files: list[PlannedFile], target: Path) -> None:
    """Create ``target`` and the files; never overwrites (exclusive creation throughout).

    If anything fails, ``target`` (which this call created) is removed again: no half service.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        target.mkdir()
    except FileExistsError:
        raise ScaffoldError(f"{target} already exists; refusing to overwrite it") from None
    try:
        _create(files)
    except BaseException:
        shutil.rmtree(target, ignore_errors=True)
        raise


def _create(files: list[PlannedFile]) -> None:
    for planned in files:
        planned.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            with planned.path.open("x", encoding="utf-8") as out:
                out.write(planned.content)
            if planned.executable:
                planned.path.chmod(0o755)
        except FileExistsError:
            if not planned.shared:
                raise ScaffoldError(
                    f"{planned.path} already exists; refusing to overwrite it"
                ) from None


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(2, f"kit new: {message} (see kit new --help)\n")


def main(argv: list[str]) -> int:
    """``kit new NAME [--dir PATH] [--runtime NAME] [--dry-run]``: scaffold a service whose
    tests pass: inside a kit checkout the package services/NAME, elsewhere a repository ./NAME."""
    from runtimes.registry import NAMES as RUNTIMES

    parser = _Parser(prog="kit new", description=main.__doc__)
    parser.add_argument("name", help="the service's name: a lowercase Python identifier")
    parser.add_argument(
        "--dir", type=Path, help="create a service package there instead (default: see above)"
    )
    parser.add_argument(
        "--runtime",
        choices=RUNTIMES,
        default=DEFAULT_RUNTIME,
        help=f"the server a repository depends on (default {DEFAULT_RUNTIME})",
    )
    parser.add_argument("--dry-run", action="store_true", help="list the files, write nothing")
    args = parser.parse_args(argv)
    cwd = Path.cwd()
    standalone = args.dir is None and not is_checkout(cwd)
    if args.dir is not None:
        target: Path = args.dir
    else:
        target = Path(args.name) if standalone else Path("services") / args.name
    try:
        check_name(args.name)
        if target.exists() or target.is_symlink():
            raise ScaffoldError(f"{target} already exists; refusing to overwrite it")
        if standalone:
            files = render_repository(args.name, target, args.runtime)
        else:
            files = render(args.name, target, cwd)
        if not args.dry_run:
            write(files, target)
    except (ScaffoldError, OSError) as exc:
        print(f"kit new: {exc}", file=sys.stderr)
        return 2
    verb = "would create" if args.dry_run else "created"
    for planned in files:
        print(f"{verb} {planned.path}")
    if args.dry_run:
        return 0
    if standalone:
        print(f"next: cd {target} && make test && make run")
    else:
        module = module_path(target, cwd) or args.name
        print(f"next: pytest {target} && kit serve {module}.app:app")
    return 0
