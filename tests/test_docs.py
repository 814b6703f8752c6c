"""The docs name real tests: every promise in docs/reliability.md points at tests that exist."""

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def defined_tests() -> set[str]:
    names = set()
    for path in (ROOT / "tests").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.ClassDef) and node.name.startswith(
                ("test_", "Test")
            ):
                names.add(node.name)
    return names


def test_every_test_docs_reliability_names_exists():
    text = (ROOT / "docs" / "reliability.md").read_text()
    named = set(re.findall(r"`(?:[\w/]+\.py::)?(test_\w+)`", text))
    assert len(named) > 20
    assert named - defined_tests() == set()


def test_every_test_file_docs_reliability_names_exists():
    text = (ROOT / "docs" / "reliability.md").read_text()
    files = set(re.findall(r"`(tests/[\w/]+\.py)", text))
    assert files and {f for f in files if not (ROOT / f).exists()} == set()
