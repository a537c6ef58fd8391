"""Layout and dependency rules of ARCHITECTURE.md section 3, checked with an `ast` walk.

Each rule test lists every violation as `path:line: what`. Each detector also has a
positive control on a small synthetic module, so a rule cannot pass because its
detector went blind.
"""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("relay", "handlers", "keys")

FLOW_BANNED = (
    "signalbot",
    "sqlalchemy",
    "aiohttp",
    "websockets",
    "relay.store",
    "relay.clock",
    "relay.app",
)
RANDOM_MODULES = ("random", "secrets")
CLOCK_MODULE = "relay/clock.py"
BAD_MODULE_NAMES = ("utils", "helpers", "manager")
BUILDERS = frozenset(
    {"create_engine", "create_async_engine", "make_engine", "SignalBot", "ClientSession"}
)
SANDBOX = "relay.sandbox"
SANDBOX_IMPORTERS = ("relay/sandbox_org.py", "relay/demo.py")
SANDBOX_IMPORTER_DIRS = ("relay/cli/", "relay/sandbox/")


@dataclass(frozen=True)
class Module:
    rel: str  # path relative to the repository, with '/'
    name: str  # dotted module name
    is_package: bool
    tree: ast.Module


def _module_name(rel: Path) -> tuple[str, bool]:
    parts = list(rel.with_suffix("").parts)
    is_package = parts[-1] == "__init__"
    if is_package:
        parts.pop()
    return ".".join(parts), is_package


def parse_module(rel: str, source: str) -> Module:
    name, is_package = _module_name(Path(rel))
    return Module(rel, name, is_package, ast.parse(source, filename=rel))


@cache
def product_modules() -> tuple[Module, ...]:
    found: list[Module] = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            if "__pycache__" in path.parts:
                continue
            rel = path.relative_to(ROOT).as_posix()
            found.append(parse_module(rel, path.read_text("utf-8")))
    return tuple(found)


def modules_under(prefix: str) -> list[Module]:
    return [m for m in product_modules() if m.rel.startswith(prefix)]


# -- detectors ------------------------------------------------------------------------------


def _resolve(module: Module, node: ast.ImportFrom) -> str:
    if node.level == 0:
        return node.module or ""
    base = module.name.split(".")
    if not module.is_package:
        base = base[:-1]
    if node.level > 1:
        base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, *([node.module] if node.module else [])])


def imports(module: Module) -> Iterator[tuple[int, str]]:
    """Every module name `module` imports, anywhere (top level, functions, TYPE_CHECKING).

    `from a import b` yields `a` and `a.b` (b may be a submodule). String literals given to
    `importlib.import_module` or `__import__` count as imports too.
    """
    for node in ast.walk(module.tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            base = _resolve(module, node)
            yield node.lineno, base
            for alias in node.names:
                if alias.name != "*":
                    yield node.lineno, f"{base}.{alias.name}" if base else alias.name
        elif isinstance(node, ast.Call):
            func = node.func
            called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if (
                called in {"import_module", "__import__"}
                and node.args
                and isinstance(node.args[0], ast.Constant)
                and isinstance(node.args[0].value, str)
            ):
                yield node.lineno, node.args[0].value


def is_within(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def _bindings(module: Module) -> dict[str, str]:
    """Local names bound to the modules/classes the clock rules care about."""
    wanted_modules = {"datetime", "time", *RANDOM_MODULES}
    bound: dict[str, str] = {}
    for node in ast.walk(module.tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name in wanted_modules:
                    bound[alias.asname or alias.name] = alias.name
        elif (
            isinstance(node, ast.ImportFrom) and node.level == 0 and node.module in wanted_modules
        ):
            for alias in node.names:
                bound[alias.asname or alias.name] = f"{node.module}.{alias.name}"
    return bound


WALL_CLOCK_READS = frozenset(
    {
        "datetime.datetime.now",
        "datetime.datetime.utcnow",
        "datetime.datetime.today",
        "datetime.date.today",
    }
)
TIME_READS = frozenset({"time.time", "time.time_ns"})


def _dotted(node: ast.expr, bound: dict[str, str]) -> str | None:
    """`dt.datetime.now` -> `datetime.datetime.now` when `dt` is the datetime module."""
    if isinstance(node, ast.Name):
        return bound.get(node.id)
    if isinstance(node, ast.Attribute):
        base = _dotted(node.value, bound)
        return None if base is None else f"{base}.{node.attr}"
    return None


def clock_reads(module: Module) -> list[tuple[int, str]]:
    """References (called or not) to wall-clock readers: datetime.now and friends."""
    bound = _bindings(module)
    hits: list[tuple[int, str]] = []
    for node in ast.walk(module.tree):
        if isinstance(node, ast.Attribute | ast.Name):
            dotted = _dotted(node, bound)
            if dotted in WALL_CLOCK_READS:
                hits.append((node.lineno, dotted))
    return hits


def time_and_random_uses(module: Module) -> list[tuple[int, str]]:
    """`time.time`/`time.time_ns` references and any import of random/secrets."""
    bound = _bindings(module)
    hits: list[tuple[int, str]] = []
    for node in ast.walk(module.tree):
        if isinstance(node, ast.Attribute | ast.Name):
            dotted = _dotted(node, bound)
            if dotted in TIME_READS:
                hits.append((node.lineno, dotted))
    hits.extend(
        (line, name)
        for line, name in imports(module)
        if any(is_within(name, banned) for banned in RANDOM_MODULES)
    )
    return hits


def _import_time_nodes(tree: ast.Module) -> Iterator[ast.AST]:
    """Every node evaluated when the module is imported: not the bodies of functions
    (but their decorators and default arguments), class bodies included."""
    stack: list[ast.AST] = list(tree.body)
    while stack:
        node = stack.pop()
        yield node
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            stack.extend(node.decorator_list)
            stack.extend(node.args.defaults)
            stack.extend(d for d in node.args.kw_defaults if d is not None)
            continue
        if isinstance(node, ast.Lambda):
            stack.extend(node.args.defaults)
            stack.extend(d for d in node.args.kw_defaults if d is not None)
            continue
        stack.extend(ast.iter_child_nodes(node))


def module_level_builders(module: Module) -> list[tuple[int, str]]:
    hits: list[tuple[int, str]] = []
    for node in _import_time_nodes(module.tree):
        if isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name in BUILDERS:
                hits.append((node.lineno, f"{name}(...) at import time"))
    return hits


def _report(hits: list[str]) -> str:
    return "\n".join(["", *hits])


def _synthetic(source: str, rel: str = "relay/example.py") -> Module:
    return parse_module(rel, textwrap.dedent(source))


# -- sanity ---------------------------------------------------------------------------------


def test_the_walk_sees_the_product() -> None:
    rels = {m.rel for m in product_modules()}
    for expected in (
        "relay/clock.py",
        "relay/cli/main.py",
        "handlers/frames.py",
        "handlers/flows/intake.py",
        "keys/keyring.py",
        "relay/sandbox/__init__.py",
    ):
        assert expected in rels
    assert modules_under("handlers/flows/")
    assert modules_under("keys/")


# -- rule: keys/ imports nothing from relay/ or handlers/ -----------------------------------


def test_keys_imports_nothing_from_relay_or_handlers() -> None:
    hits = [
        f"{m.rel}:{line}: imports {name}"
        for m in modules_under("keys/")
        for line, name in imports(m)
        if is_within(name, "relay") or is_within(name, "handlers")
    ]
    assert not hits, _report(hits)


def test_import_detector_sees_every_form() -> None:
    mod = _synthetic(
        """
        from __future__ import annotations
        import importlib
        from typing import TYPE_CHECKING
        if TYPE_CHECKING:
            from relay.store import db
        def later():
            import sqlalchemy.orm as orm
            from .. import app
            from ..sandbox import hub
            importlib.import_module("signalbot")
        """,
        rel="relay/cli/example.py",
    )
    names = {name for _, name in imports(mod)}
    assert {"relay.store", "sqlalchemy.orm", "relay.app", "relay.sandbox", "signalbot"} <= names


# -- rule: flows are pure -------------------------------------------------------------------


def test_flows_import_no_io_framework_store_clock_or_app() -> None:
    hits = [
        f"{m.rel}:{line}: imports {name}"
        for m in modules_under("handlers/flows/")
        for line, name in imports(m)
        if any(is_within(name, banned) for banned in FLOW_BANNED)
    ]
    assert not hits, _report(hits)


def test_flows_read_no_clock_and_no_randomness() -> None:
    hits = [
        f"{m.rel}:{line}: {what}"
        for m in modules_under("handlers/flows/")
        for line, what in [*clock_reads(m), *time_and_random_uses(m)]
    ]
    assert not hits, _report(hits)


def test_importing_the_flows_loads_none_of_the_banned_modules() -> None:
    """The same rule, transitively: what `import handlers.flows.*` actually pulls in."""
    flows = sorted(m.name for m in modules_under("handlers/flows/"))
    code = "\n".join(
        [
            "import sys",
            *(f"import {name}" for name in flows),
            f"banned = {FLOW_BANNED!r}",
            "print('\\n'.join(sorted(m for m in sys.modules",
            "    if any(m == b or m.startswith(b + '.') for b in banned))))",
        ]
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True,
        timeout=60,
    )
    assert out.stdout.strip() == ""


def test_clock_and_randomness_detectors_see_aliases() -> None:
    mod = _synthetic(
        """
        import datetime as dt
        import time
        from datetime import date, datetime as DT
        from random import choice
        a = dt.datetime.now()
        b = DT.utcnow
        c = date.today()
        d = time.time_ns()
        """
    )
    reads = {what for _, what in clock_reads(mod)}
    assert reads == {"datetime.datetime.now", "datetime.datetime.utcnow", "datetime.date.today"}
    others = {what for _, what in time_and_random_uses(mod)}
    assert {"time.time_ns", "random", "random.choice"} <= others


def test_clock_detector_ignores_an_injected_clock() -> None:
    mod = _synthetic(
        """
        from datetime import datetime
        def f(clock, now: datetime) -> datetime:
            return max(clock.now(), now, datetime.fromisoformat("2026-01-01T00:00:00+00:00"))
        """
    )
    assert clock_reads(mod) == []


# -- rule: only relay/clock.py reads the wall clock -----------------------------------------


def test_only_the_clock_module_reads_the_wall_clock() -> None:
    hits = [
        f"{m.rel}:{line}: {what}"
        for m in product_modules()
        if m.rel != CLOCK_MODULE
        for line, what in clock_reads(m)
    ]
    assert not hits, _report(hits)


def test_the_clock_module_does_read_it() -> None:
    """Positive control on real code: the detector finds the one sanctioned read."""
    (clock,) = [m for m in product_modules() if m.rel == CLOCK_MODULE]
    assert [what for _, what in clock_reads(clock)] == ["datetime.datetime.now"]


# -- rule: modules are named for what they hold ---------------------------------------------


def test_no_grab_bag_module_names() -> None:
    hits = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*")):
            if "__pycache__" in path.parts:
                continue
            stem = path.stem if path.suffix == ".py" else path.name if path.is_dir() else None
            if stem in BAD_MODULE_NAMES:
                hits.append(path.relative_to(ROOT).as_posix())
    assert not hits, _report(hits)


# -- rule: one composition root; nothing is built at import time ----------------------------


def test_no_engine_bot_or_client_built_at_import_time() -> None:
    hits = [
        f"{m.rel}:{line}: {what}"
        for m in product_modules()
        for line, what in module_level_builders(m)
    ]
    assert not hits, _report(hits)


def test_builder_detector_sees_module_level_class_level_and_default_arguments() -> None:
    mod = _synthetic(
        """
        from relay.store.db import make_engine
        from sqlalchemy import create_engine
        import signalbot
        ENGINE = make_engine("sqlite://")
        class Holder:
            bot = signalbot.SignalBot({})
        def build(engine=create_engine("sqlite://")):
            return make_engine("sqlite://")  # inside a function: fine
        async def run():
            return signalbot.SignalBot({})
        lazy = lambda: make_engine("sqlite://")
        """
    )
    lines = sorted(line for line, _ in module_level_builders(mod))
    assert lines == [5, 7, 8]


# -- rule: the sandbox stays out of the product ---------------------------------------------


def test_sandbox_is_imported_only_by_demo_sandbox_org_and_the_cli() -> None:
    hits = [
        f"{m.rel}:{line}: imports {name}"
        for m in product_modules()
        if m.rel not in SANDBOX_IMPORTERS and not m.rel.startswith(SANDBOX_IMPORTER_DIRS)
        for line, name in imports(m)
        if is_within(name, SANDBOX)
    ]
    assert not hits, _report(hits)


def test_sandbox_detector_sees_the_allowed_importers() -> None:
    """Positive control on real code: the demo and sandbox_org do import the sandbox."""
    for rel in SANDBOX_IMPORTERS:
        (module,) = [m for m in product_modules() if m.rel == rel]
        assert any(is_within(name, SANDBOX) for _, name in imports(module)), rel


@pytest.mark.parametrize(
    ("source", "rel"),
    [
        ("from relay import sandbox\n", "relay/outbox.py"),
        ("from .sandbox.hub import Hub\n", "relay/app.py"),
        ("import relay.sandbox.server\n", "handlers/frames.py"),
    ],
)
def test_sandbox_detector_sees_every_spelling(source: str, rel: str) -> None:
    mod = _synthetic(source, rel=rel)
    assert any(is_within(name, SANDBOX) for _, name in imports(mod))
