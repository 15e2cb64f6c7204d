"""The structure drawing, as tests: no import circles in broker/, and the configuration at the bottom."""

from __future__ import annotations

from pathlib import Path

import grimp
import pytest

ALLOWED_UNDER_CONFIG = {"broker.errors"}  # what broker.config may import besides itself


@pytest.fixture(scope="module")
def graph() -> grimp.ImportGraph:
    # type-checking imports count too: a circle hidden behind TYPE_CHECKING is still a circle to the reader
    return grimp.build_graph("broker", exclude_type_checking_imports=False)


def circles(graph: grimp.ImportGraph) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for imported in sorted(graph.find_modules_directly_imported_by(module)):
            if imported not in index:
                visit(imported)
                low[module] = min(low[module], low[imported])
            elif imported in on_stack:
                low[module] = min(low[module], index[imported])
        if low[module] == index[module]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == module:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for module in sorted(graph.modules):
        if module not in index:
            visit(module)
    return found


def test_there_is_no_import_circle_in_the_broker(graph):
    assert circles(graph) == []


def test_the_circle_finder_finds_a_circle():
    fake = grimp.ImportGraph()
    for module in ("a", "a.x", "a.y", "a.z"):
        fake.add_module(module)
    fake.add_import(importer="a.x", imported="a.y")
    fake.add_import(importer="a.y", imported="a.x")
    fake.add_import(importer="a.z", imported="a.x")
    assert circles(fake) == [["a.x", "a.y"]]


def test_the_configuration_imports_no_feature_module(graph):
    config_modules = {m for m in graph.modules if m == "broker.config" or m.startswith("broker.config.")}
    imported = {
        target
        for module in config_modules
        for target in graph.find_modules_directly_imported_by(module)
        if target.startswith("broker") and target not in config_modules
    }
    assert imported <= ALLOWED_UNDER_CONFIG, sorted(imported - ALLOWED_UNDER_CONFIG)


MAX_MODULE_LINES = 400  # small modules with one job; broker/demo/ (fakes and the demo) is exempt
BROKER = Path(__file__).resolve().parent.parent / "broker"


def modules_over(root: Path, limit: int) -> dict[str, int]:
    """Python files under `root`, outside demo/, longer than `limit` lines."""
    over = {}
    for path in sorted(root.rglob("*.py")):
        relative = path.relative_to(root)
        if relative.parts[0] == "demo":
            continue
        lines = len(path.read_text(encoding="utf-8").splitlines())
        if lines > limit:
            over[str(relative)] = lines
    return over


def test_no_module_in_the_broker_is_over_400_lines():
    assert modules_over(BROKER, MAX_MODULE_LINES) == {}


def test_the_size_check_sees_a_long_module(tmp_path):
    (tmp_path / "demo").mkdir()
    (tmp_path / "demo" / "fake.py").write_text("x = 1\n" * 500)
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "long.py").write_text("x = 1\n" * 401)
    (tmp_path / "short.py").write_text("x = 1\n" * 400)
    assert modules_over(tmp_path, MAX_MODULE_LINES) == {"pkg/long.py": 401}
