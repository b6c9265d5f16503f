"""The layers of the product code, read from its imports with `ast` (nothing is imported to check them).

Data flows from `daemon/` (tailing, adapters, the learning loop) down to `storage/` and `extractors/`, never
back up: every import counts for that rule, inside functions and under `if TYPE_CHECKING:` too. Cycles are
looked for among the imports a module runs when it is loaded; an import inside a function or under
`if TYPE_CHECKING:` runs late or never, so it is left out of the cycle check (the usual way to break one).
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("daemon", "storage", "extractors")


@dataclass(frozen=True)
class Import:
    """One import statement of a product module, resolved to the product module it names."""

    target: str
    line: int
    at_load: bool  # run when the module is loaded: not inside a function, not under TYPE_CHECKING


def product_modules() -> dict[str, Path]:
    """Every module of the product packages by its dotted name."""
    modules: dict[str, Path] = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return modules


MODULES = product_modules()


def _product_module(name: str) -> str | None:
    """The product module an imported name lives in (`daemon.config.Settings` -> `daemon.config`)."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _targets(module: str, path: Path, node: ast.Import | ast.ImportFrom) -> list[str]:
    names: list[str | None] = []
    if isinstance(node, ast.Import):
        names = [_product_module(alias.name) for alias in node.names]
    else:
        base = node.module or ""
        if node.level:
            package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
            package = package[: len(package) - node.level + 1]
            base = ".".join([*package, base] if base else package)
        # `from daemon import retention` names a submodule; `from daemon.config import Settings` a name in one.
        names = [_product_module(f"{base}.{alias.name}") or _product_module(base) for alias in node.names]
    return sorted({name for name in names if name is not None and name != module})


def imports_of(module: str, path: Path) -> list[Import]:
    """Every import of product modules in one module, marked as run at load or not."""
    found: list[Import] = []

    def walk(node: ast.AST, at_load: bool) -> None:
        if isinstance(node, ast.Import | ast.ImportFrom):
            found.extend(Import(target, node.lineno, at_load) for target in _targets(module, path, node))
        elif isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.body:
                walk(child, False)
            for child in node.orelse:
                walk(child, at_load)
        else:
            inside_function = isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
            for child in ast.iter_child_nodes(node):
                walk(child, at_load and not inside_function)

    walk(ast.parse(path.read_text(), str(path)), True)
    return found


IMPORTS = {module: imports_of(module, path) for module, path in MODULES.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The groups of modules that import each other, directly or around a circle (Tarjan's components)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        for target in sorted(graph[module]):
            if target not in index:
                visit(target)
                low[module] = min(low[module], low[target])
            elif target in stack:
                low[module] = min(low[module], index[target])
        if low[module] == index[module]:
            group: list[str] = []
            while not group or group[-1] != module:
                group.append(stack.pop())
            if len(group) > 1:
                found.append(sorted(group))

    for module in sorted(graph):
        if module not in index:
            visit(module)
    return found


def test_the_import_reader_sees_every_kind_of_import() -> None:
    # A reader that missed imports would let both rules below pass on nothing.
    at_load = {i.target for i in IMPORTS["daemon.ingest"] if i.at_load}
    assert {"storage.events", "daemon.sources.tailer"} <= at_load
    later = {(i.target, i.at_load) for i in IMPORTS["daemon.pipeline"]}
    assert ("extractors.factory", False) in later  # inside a function
    assert ("storage.skills", False) in later  # under TYPE_CHECKING
    assert ("daemon.retention", True) in {(i.target, i.at_load) for i in IMPORTS["daemon.app"]}  # `from daemon import`


def test_storage_and_extractors_never_import_the_daemon() -> None:
    upward = [
        f"{MODULES[module].relative_to(ROOT)}:{i.line} imports {i.target}"
        for module, imports in IMPORTS.items()
        if module.split(".")[0] in ("storage", "extractors")
        for i in imports
        if i.target.split(".")[0] == "daemon"
    ]
    assert upward == [], "storage/ and extractors/ are below the daemon:\n" + "\n".join(upward)


def test_product_modules_import_each_other_without_cycles() -> None:
    graph = {module: {i.target for i in imports if i.at_load} for module, imports in IMPORTS.items()}
    found = cycles(graph)
    described = [
        " <-> ".join(group) + ": " + "; ".join(f"{m} imports {sorted(graph[m] & set(group))}" for m in group)
        for group in found
    ]
    assert found == [], "modules that import each other when loaded:\n" + "\n".join(described)
