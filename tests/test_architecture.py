"""The layers depend one way: ``support_console -> delivery <- providers``.

The core (``delivery``: records, lifecycle, ingest, settings, the adapters' contract and the
registry that names them by dotted path) imports no adapter and no console module; the adapters
(``providers``) depend on the core; the console depends on the core only. No module of ours is
part of an import cycle. Every ``import`` statement counts, inside functions and
``TYPE_CHECKING`` blocks too, and so does a dynamic import of a literal name
(``import_module("providers.x")``, ``import_string``, ``__import__``): an AST walk, no import
is executed. Only ``delivery.registry`` may name an adapter by dotted path.
"""

import ast
import re
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


DYNAMIC_IMPORTS = {"import_module", "import_string", "__import__"}
#: A string that names a module of the outer layers: a hidden import when the core holds it.
OUTER_PATH = re.compile(r"^(providers|support_console)\.[\w.]+$")


def dynamic_import_target(node: ast.AST) -> str | None:
    """The literal module path of ``import_module("a.b")`` and its kin, else None."""
    if not (isinstance(node, ast.Call) and node.args):
        return None
    func = node.func
    called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
    argument = node.args[0]
    if called in DYNAMIC_IMPORTS and isinstance(argument, ast.Constant):
        return str(argument.value)
    return None


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
        elif target := dynamic_import_target(node):
            targets = [target]
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


@pytest.mark.parametrize("name", sorted(n for n in MODULES if n.startswith("delivery")))
def test_only_the_registry_names_an_adapter_or_console_module(name):
    """A dotted path in a string is an import the walk above cannot follow."""
    if name == "delivery.registry":
        return
    tree = ast.parse(MODULES[name].read_text())
    named = [
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and OUTER_PATH.match(node.value)
    ]
    assert not named, f"{name} names {named}; add it to delivery/registry.py instead"


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


def test_the_walk_sees_dynamic_imports_of_a_literal_name():
    source = "import importlib\nimportlib.import_module('providers.twilio')\n__import__('x')"
    found = [dynamic_import_target(node) for node in ast.walk(ast.parse(source))]
    assert [name for name in found if name] == ["providers.twilio", "x"]
    assert OUTER_PATH.match("support_console.views") and not OUTER_PATH.match("providers are")


def test_a_webhook_worker_loads_none_of_the_heavy_modules():
    """What made a worker cost 258 MiB and 2.5 s to start (docs/performance.md, "Memory and
    start-up") stays out of it: a fresh process with all four providers, set up as a gunicorn
    worker is, with the ingest path imported."""
    import subprocess
    import sys

    from bench.footprint import PROVIDER_ENV, environment

    script = """
import sys, django
django.setup()
from django.urls import get_resolver
get_resolver().url_patterns
from django.contrib import admin
admin.site.get_urls()
import delivery.ingest, delivery.views, delivery.statements
heavy = ("phonenumbers.geocoder", "phonenumbers.timezone", "telnyx", "twilio.rest", "nacl")
print(" ".join(sorted(m for m in sys.modules if m.split(".")[0] in ("telnyx", "nacl") or m.startswith(heavy))))
"""
    env = environment(list(PROVIDER_ENV))
    env["DATABASE_URL"] = "sqlite:///:memory:"
    out = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "", out.stdout


def test_a_deferred_mode_worker_loads_the_task_framework_at_start_up():
    """Not on its first webhook, which would pay for the import (with --preload the master
    imports it once and the workers share it)."""
    import subprocess
    import sys

    from bench.footprint import environment

    script = "import sys, django; django.setup(); print('delivery.deferred' in sys.modules)"
    env = {**environment(["twilio"]), "DATABASE_URL": "sqlite:///:memory:"}
    for mode, loaded in [("deferred", "True"), ("sync", "False")]:
        env["SMS_DELIVERY_PROCESSING"] = mode
        out = subprocess.run(
            [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True
        )
        assert out.stdout.strip() == loaded, (mode, out.stderr)
