"""The README and docs/ name only modules, settings, runtimes and files that exist, and miss
none of them; docs/settings.md is what its generator writes; every page is in the site's nav."""

from __future__ import annotations

import ast
import importlib
import importlib.util
import pkgutil
import re
from functools import cache
from pathlib import Path

import pytest
import yaml

import kit
from kit import settings_reference
from runtimes.registry import NAMES as RUNTIMES

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = ROOT / "docs"
REGENERATE = f"run `{settings_reference.COMMAND}` (or `make docs`) and commit docs/settings.md"

# Dotted names that look like modules but are not: the entry-point group of kit's subcommands.
NOT_MODULES = {"kit.commands"}
# Where a module may be named as a path (kit/app.py) or dotted (kit.app).
PACKAGES = ("kit", "runtimes", "bench", "services")
# File names, not modules: runtimes.md, kit.conf.
EXTENSIONS = {"md", "py", "toml", "yml", "yaml", "json", "conf", "txt", "html", "png", "sql"}
# Directories whose files the pages may name as paths.
TOP_LEVEL = ("kit", "runtimes", "services", "bench", "tests", "deploy", "docs", ".github", ".ci")


def pages() -> list[Path]:
    return [README, *sorted(DOCS.rglob("*.md"))]


def relative(path: Path) -> str:
    return str(path.relative_to(ROOT))


@cache
def prose(path: Path) -> str:
    """The page without its fenced code blocks (examples may name what they are about to make)."""
    return re.sub(r"^```.*?^```", "", path.read_text(), flags=re.DOTALL | re.MULTILINE)


@cache
def text(path: Path) -> str:
    return path.read_text()


def placeholder(part: str) -> bool:
    """NAME in services/NAME/tests or bench.NAME stands for any name."""
    return re.fullmatch(r"[A-Z]+", part) is not None


def resolves(dotted: str) -> bool:
    """An importable module, or an attribute of the longest importable prefix."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        name = ".".join(parts[:cut])
        try:
            found = importlib.util.find_spec(name) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            continue
        obj: object = importlib.import_module(name)
        for attr in parts[cut:]:
            if not hasattr(obj, attr):
                return False
            obj = getattr(obj, attr)
        return True
    return False


DOTTED = re.compile(r"(?<![\w./-])((?:kit|runtimes|bench)(?:\.[A-Za-z_][A-Za-z0-9_]*)+)")


def test_every_dotted_module_name_exists() -> None:
    wrong = []
    for page in pages():
        for name in sorted(set(DOTTED.findall(text(page)))):
            parts = name.split(".")
            if parts[-1] in EXTENSIONS or any(placeholder(part) for part in parts):
                continue
            if name in NOT_MODULES or resolves(name):
                continue
            wrong.append(f"{relative(page)} names `{name}`, which is no module or attribute")
    assert not wrong, (
        "Fix the name or the text (rename it to what the code calls it now, or drop the "
        "sentence):\n" + "\n".join(wrong)
    )


PATH = re.compile(r"(?:`|\]\()(\.?[A-Za-z_][\w.-]*/[\w./-]*)(?:`|\)|#)")


def test_every_path_named_exists() -> None:
    wrong = []
    for page in pages():
        for name in sorted(set(PATH.findall(prose(page)))):
            top = name.split("/", 1)[0]
            if any(placeholder(part) for part in name.split("/")):
                continue
            if top not in TOP_LEVEL and not (page != README and name.startswith("../")):
                continue
            target = (page.parent / name) if name.startswith("../") else ROOT / name
            if not target.resolve().exists():
                wrong.append(f"{relative(page)} names `{name}`, which does not exist")
    assert not wrong, "Fix the path or the text:\n" + "\n".join(wrong)


def public_modules() -> list[str]:
    return sorted(
        f"kit.{info.name}" for info in pkgutil.iter_modules(kit.__path__) if info.name[0] != "_"
    )


def test_every_public_kit_module_is_mentioned() -> None:
    everything = "\n".join(text(page) for page in pages())
    missing = [
        name
        for name in public_modules()
        if not re.search(rf"(?<![\w.]){re.escape(name)}(?![\w])", everything)
        and f"{name.replace('.', '/')}" not in everything
    ]
    assert not missing, (
        "These kit modules are not mentioned in README.md or docs/: name each (as `kit.NAME`) "
        "on the page of its area, and in the table of docs/index.md: " + ", ".join(missing)
    )


SETTING_NAME = re.compile(r"\b(KIT_[A-Z0-9_]*[A-Z0-9])(_?\*)?")


def test_every_setting_named_exists() -> None:
    known = settings_reference.variables()
    wrong = []
    for page in pages():
        for name, star in sorted(set(SETTING_NAME.findall(text(page)))):
            if star or name.endswith("_"):
                if not any(v.startswith(name) for v in known):
                    wrong.append(f"{relative(page)} names `{name}*`, which matches no setting")
            elif name not in known:
                wrong.append(f"{relative(page)} names `{name}`, which is no setting")
    assert not wrong, (
        "Fix the name, or (for a new setting) add it to kit/settings.py with a doc= and "
        f"{REGENERATE}:\n" + "\n".join(wrong)
    )


def test_every_setting_is_explained_on_a_page() -> None:
    everything = "\n".join(text(page) for page in pages() if page.name != "settings.md")
    missing = sorted(
        name
        for name in settings_reference.settings_variables()
        if not re.search(rf"\b{name}\b", everything)
    )
    assert not missing, (
        "These settings appear only in the generated reference: say where each matters on "
        "the page of its area (README.md or docs/*.md): " + ", ".join(missing)
    )


def table_header(page: Path, first_cell: str) -> list[str]:
    for line in text(page).splitlines():
        cells = [c.strip().strip("`") for c in line.strip().strip("|").split("|")]
        if line.startswith("|") and cells and cells[0] == first_cell:
            return cells[1:]
    raise AssertionError(
        f"{relative(page)} has no runtime table (a table whose header row starts with "
        f"'| {first_cell or ' '} |' and names each runtime in a column)"
    )


@pytest.mark.parametrize("page", ["README.md", "docs/runtimes.md"])
def test_the_runtime_table_has_every_runtime_and_no_other(page: str) -> None:
    header = table_header(ROOT / page, "")
    assert header == list(RUNTIMES), (
        f"{page}'s runtime table has the columns {header}, but runtimes/registry.py "
        f"has {list(RUNTIMES)}: give the table one column per runtime, in that order"
    )


def test_every_runtime_named_exists() -> None:
    wrong = []
    for page in pages():
        for name in re.findall(r"KIT_RUNTIME=([a-z0-9_.:]+)", text(page)):
            if name not in RUNTIMES and ":" not in name:
                wrong.append(f"{relative(page)} sets KIT_RUNTIME={name}, which is no runtime")
    assert not wrong, f"Use one of {', '.join(RUNTIMES)}:\n" + "\n".join(wrong)


def test_the_settings_reference_is_generated() -> None:
    assert (DOCS / "settings.md").read_text() == settings_reference.render(), (
        f"docs/settings.md differs from kit/settings.py: {REGENERATE}"
    )


def test_every_settings_field_is_documented() -> None:
    assert not settings_reference.undocumented(), (
        "give these Settings fields a doc= in their _env(...) in kit/settings.py, then "
        f"{REGENERATE}: {', '.join(settings_reference.undocumented())}"
    )


SCANNED = ("kit", "runtimes", "services")


def sources() -> list[Path]:
    return [path for top in SCANNED for path in sorted((ROOT / top).rglob("*.py"))]


@cache
def constants() -> dict[str, str]:
    """Module-level string constants of every scanned file, by name (imported ones resolve)."""
    found = {}
    for path in sources():
        for node in ast.parse(path.read_text()).body:
            if (
                isinstance(node, ast.Assign)
                and len(node.targets) == 1
                and isinstance(node.targets[0], ast.Name)
                and isinstance(node.value, ast.Constant)
                and isinstance(node.value.value, str)
            ):
                found[node.targets[0].id] = node.value.value
    return found


def environment_reads(path: Path) -> set[str]:
    """Names read with os.environ.get/[...], os.getenv or environ.get, literal or constant,
    and names passed to a function of the same module that reads its argument that way."""
    tree = ast.parse(path.read_text())

    def is_environ(node: ast.expr) -> bool:
        return (isinstance(node, ast.Attribute) and node.attr == "environ") or (
            isinstance(node, ast.Name) and node.id in ("environ", "env", "environment")
        )

    def key(node: ast.expr) -> ast.expr | None:
        if isinstance(node, ast.Call) and node.args:
            func = node.func
            if isinstance(func, ast.Attribute) and (
                (func.attr == "get" and is_environ(func.value)) or func.attr == "getenv"
            ):
                return node.args[0]
        if isinstance(node, ast.Subscript) and is_environ(node.value):
            return node.slice
        return None

    def value(node: ast.expr) -> str | None:
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return node.value
        if isinstance(node, ast.Name):
            return constants().get(node.id)
        return None

    names = set()
    readers: dict[str, int] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef):
            params = [a.arg for a in node.args.args]
            for inner in ast.walk(node):
                k = key(inner)  # type: ignore[arg-type]
                if isinstance(k, ast.Name) and k.id in params:
                    readers[node.name] = params.index(k.id)
        k = key(node) if isinstance(node, ast.expr) else None
        if k is not None and (found := value(k)) is not None:
            names.add(found)
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            index = readers.get(node.func.id)
            if index is not None and len(node.args) > index:
                found = value(node.args[index])
                if found is not None:
                    names.add(found)
    names |= service_settings_variables(tree)
    return {name for name in names if re.fullmatch(r"[A-Z][A-Z0-9_]+", name)}


def service_settings_variables(tree: ast.Module) -> set[str]:
    """The variables a ``ServiceSettings`` subclass reads: ``env_prefix`` + the field's name
    upper-cased, or the name given with ``msgspec.field(name=...)``."""
    names = set()
    for node in ast.walk(tree):
        if not isinstance(node, ast.ClassDef):
            continue
        if not any(isinstance(b, ast.Name) and b.id == "ServiceSettings" for b in node.bases):
            continue
        prefix = ""
        for item in node.body:
            if (
                isinstance(item, ast.Assign)
                and any(isinstance(t, ast.Name) and t.id == "env_prefix" for t in item.targets)
                and isinstance(item.value, ast.Constant)
                and isinstance(item.value.value, str)
            ):
                prefix = item.value.value
        for item in node.body:
            if not isinstance(item, ast.AnnAssign) or not isinstance(item.target, ast.Name):
                continue
            if item.target.id.startswith("_") or item.target.id == "env_prefix":
                continue
            name = f"{prefix}{item.target.id.upper()}"
            if isinstance(item.value, ast.Call):
                for keyword in item.value.keywords:
                    if keyword.arg == "name" and isinstance(keyword.value, ast.Constant):
                        name = str(keyword.value.value)
            names.add(name)
    return names


def test_every_environment_variable_the_code_reads_is_documented() -> None:
    known = settings_reference.variables()
    wrong = []
    for path in sources():
        for name in sorted(environment_reads(path) - known):
            wrong.append(f"{relative(path)} reads {name}")
    assert not wrong, (
        "Add each to OTHER_VARIABLES in kit/settings_reference.py (or make it a Settings "
        f"field with a doc=), then {REGENERATE}:\n" + "\n".join(wrong)
    )


def test_the_environment_scan_finds_what_it_should() -> None:
    found = environment_reads(ROOT / "services" / "orders" / "app.py")
    assert {"CATALOG_URL", "ORDERS_NOTIFY_URL", "ORDERS_CATALOG_TIMEOUT"} <= found
    assert "BENCH_UPSTREAM_URL" in environment_reads(ROOT / "services" / "bench" / "app.py")


def nav_pages(nav: object) -> set[str]:
    if isinstance(nav, str):
        return {nav}
    if isinstance(nav, list):
        return set().union(*(nav_pages(item) for item in nav)) if nav else set()
    if isinstance(nav, dict):
        return set().union(*(nav_pages(item) for item in nav.values()))
    return set()


class _Loader(yaml.SafeLoader):
    """Reads mkdocs.yml, whose material extensions use !!python/name tags."""


_Loader.add_multi_constructor("tag:yaml.org,2002:python/", lambda loader, suffix, node: None)


def test_every_page_is_in_the_nav() -> None:
    config = yaml.load((ROOT / "mkdocs.yml").read_text(), Loader=_Loader)
    listed = nav_pages(config["nav"])
    pages_here = {str(p.relative_to(DOCS)) for p in DOCS.rglob("*.md")}
    assert not pages_here - listed, (
        "Add these pages to the nav in mkdocs.yml (under the section of their area): "
        + ", ".join(sorted(pages_here - listed))
    )
    assert not listed - pages_here, "mkdocs.yml's nav lists pages that do not exist: " + ", ".join(
        sorted(listed - pages_here)
    )


def test_the_readme_is_a_front_door() -> None:
    lines = len(text(README).splitlines())
    assert lines <= 250, (
        f"README.md has {lines} lines; keep it at 250 or fewer and move the detail to a page "
        "under docs/"
    )
    links = set(re.findall(r"\]\((docs/[\w./-]+\.md)", text(README)))
    assert links, "README.md should link into docs/ (where to read on)"


def test_the_generator_writes_and_checks_the_page(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    page = tmp_path / "docs" / "settings.md"
    assert settings_reference.main(["--check", "--output", str(page)]) == 1
    assert settings_reference.COMMAND in capsys.readouterr().err
    assert settings_reference.main(["--output", str(page)]) == 0
    assert page.read_text() == settings_reference.render()
    assert settings_reference.main(["--check", "--output", str(page)]) == 0
    page.write_text(page.read_text().replace("KIT_PORT", "KIT_PORTS"))
    assert settings_reference.main(["--check", "--output", str(page)]) == 1


def test_a_field_without_a_doc_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    import dataclasses

    from kit import settings

    @dataclasses.dataclass(frozen=True)
    class Extended(settings.Settings):
        shiny: bool = settings._env(settings._bool, "KIT_SHINY", default=False)

    monkeypatch.setattr(settings_reference, "Settings", Extended)
    assert settings_reference.undocumented() == ["shiny"]
    with pytest.raises(ValueError, match=r"give these Settings fields a doc=.*: shiny"):
        settings_reference.render()
