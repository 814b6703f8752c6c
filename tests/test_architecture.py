"""The layers depend one way: ``support_console -> delivery <- providers``.

The core (``delivery``: records, lifecycle, ingest, settings, the adapters' contract and the
registry that names them by dotted path) imports no adapter and no console module; the adapters
(``providers``) depend on the core; the console depends on the core only. No module of ours is
part of an import cycle. Every ``import`` statement counts, inside functions and
``TYPE_CHECKING`` blocks too: an AST walk, no import is executed.
"""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("delivery", "providers", "support_console")
#: What each package may import, of ours.
ALLOWED = {
    "delivery": {"delivery"},
    "providers": {"providers", "delivery"},
    "support_console": {"support_console", "delivery"},
}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {
    module_name(path): path for package in PACKAGES for path in (ROOT / package).rglob("*.py")
}


def imports_of(name: str) -> set[str]:
    """The modules of ours that ``name`` imports (``from a import b`` counts ``a.b`` when it is a
    module, else ``a``)."""
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            targets = [f"{base}.{alias.name}" for alias in node.names] + [base]
        else:
            continue
        for target in targets:
            while target and target not in MODULES:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


GRAPH = {name: imports_of(name) for name in MODULES}


@pytest.mark.parametrize("name", sorted(MODULES))
def test_each_module_imports_only_the_layers_below_it(name):
    package = name.split(".")[0]
    wrong = {target for target in GRAPH[name] if target.split(".")[0] not in ALLOWED[package]}
    assert not wrong, f"{name} imports {sorted(wrong)}"


def test_no_module_of_ours_is_part_of_an_import_cycle():
    cycles = []

    def visit(name, path):
        for target in GRAPH[name]:
            if target in path:
                cycles.append([*path[path.index(target) :], target])
            elif target not in done:
                visit(target, [*path, target])
        done.add(name)

    done: set[str] = set()
    for name in sorted(MODULES):
        if name not in done:
            visit(name, [name])
    assert not cycles, cycles[:3]


def test_the_walk_sees_imports_inside_functions_and_type_checking_blocks(tmp_path):
    """The rule would be toothless if the walk missed the imports that caused trouble before."""
    assert "delivery.registry" in GRAPH["delivery.checks"]  # imported inside a function
    assert "delivery.masking" in GRAPH["providers.twilio"]
