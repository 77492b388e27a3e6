"""The suite's own layout: what tests share lives in `tests.fixtures`, and no other file in
`tests/` is imported by another.

A test module that imports a `conftest` or another test module (for a helper defined next to some
tests, say) ties the two together: moving, renaming or deselecting either breaks the other, and
pytest imports conftests itself, under names that depend on its import mode, so importing one as
a module may load it twice. Put what is shared in `tests/fixtures/` and import it from there;
`conftest.py` files hold fixtures and hooks only.
"""

from __future__ import annotations

import ast
from pathlib import Path

from .fixtures.source import parse

TESTS = Path(__file__).resolve().parent
PACKAGE = "tests"
SHARED = f"{PACKAGE}.fixtures"


def module_name(path: Path, root: Path = TESTS) -> str:
    """The dotted name of the file at `path` inside the package at `root`."""
    parts = [root.name, *path.relative_to(root).with_suffix("").parts]
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _within(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def _refused(name: str) -> bool:
    """Whether importing the module `name` breaks the layout."""
    if "conftest" in name.split("."):
        return True
    return _within(name, PACKAGE) and not _within(name, SHARED)


def _imported(node: ast.Import | ast.ImportFrom, package: list[str]) -> list[str]:
    """The modules an import statement may load, relative ones resolved against `package`: for
    `from m import a` both `m` and `m.a` (a name imported from a package may be a module), but
    not the packages `tests.fixtures` lives in (`from tests import fixtures` is fine)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if node.level:
        base = package[: len(package) - node.level + 1]
        origin = ".".join([*base, *([node.module] if node.module else [])])
    else:
        origin = node.module or ""
    names = [f"{origin}.{alias.name}" for alias in node.names if alias.name != "*"]
    return names if SHARED.startswith(origin + ".") else [origin, *names]


def forbidden_imports(source: str, module: str, *, is_package: bool = False) -> list[str]:
    """`line: import` for every import in `source` (the module `module`; `is_package` for an
    `__init__.py`) of a `conftest` or of a test module or package other than `tests.fixtures`,
    wherever it is (inside functions too)."""
    package = module.split(".") if is_package else module.split(".")[:-1]
    found = []
    for node in ast.walk(parse(source)):
        if isinstance(node, ast.Import | ast.ImportFrom) and any(
            _refused(name) for name in _imported(node, package)
        ):
            statement = ast.get_source_segment(source, node) or ""
            found.append(f"{node.lineno}: {' '.join(statement.split())}")
    return sorted(found, key=lambda line: int(line.split(":")[0]))


def layout_violations(root: Path = TESTS) -> list[str]:
    """`path:line: import` for every forbidden import in the suite under `root`."""
    violations = []
    for path in sorted(root.rglob("*.py")):
        name = module_name(path, root)
        source = path.read_text(encoding="utf-8")
        for found in forbidden_imports(source, name, is_package=path.name == "__init__.py"):
            violations.append(f"{path.relative_to(root.parent)}:{found}")
    return violations


def conftest_extras(source: str) -> list[str]:
    """`line: name` for every class, and every function that is neither a fixture nor a
    `pytest_` hook, defined at the top of a conftest's `source`."""
    extras = []
    for node in parse(source).body:
        if isinstance(node, ast.ClassDef):
            extras.append(f"{node.lineno}: class {node.name}")
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            fixture = any("fixture" in ast.unparse(d) for d in node.decorator_list)
            if not fixture and not node.name.startswith("pytest_"):
                extras.append(f"{node.lineno}: def {node.name}")
    return extras


def test_the_checker_names_every_kind_of_forbidden_import() -> None:
    source = "\n".join(
        [
            "from ..conftest import Live",  # 1
            "from .test_events import read_events",  # 2
            "from . import test_api",  # 3
            "from tests.helpers import DEV_CLIENT_KEY",  # 4
            "import tests.tasks.support",  # 5
            "from tests import conftest",  # 6
            "from .conftest import Receiver",  # 7
            "def later():",
            "    from ..tasks import test_api",  # 9: inside a function too
            "from tests.fixtures.signin import sign_in",  # allowed from here on
            "from ..fixtures import signin",
            "from tests import fixtures",
            "import tests.fixtures.tasks",
            "from vidgate.tasks import service",
            "import httpx",
        ]
    )
    found = forbidden_imports(source, "tests.tasks.test_retry")
    assert [int(f.split(":")[0]) for f in found] == [1, 2, 3, 4, 5, 6, 7, 9]
    assert found[0] == "1: from ..conftest import Live"


def test_the_checker_resolves_imports_from_a_package_init() -> None:
    # In tests/tasks/__init__.py `.` is tests.tasks itself.
    assert forbidden_imports("from .test_api import x", "tests.tasks", is_package=True) == [
        "1: from .test_api import x"
    ]
    assert forbidden_imports("from ..fixtures import x", "tests.tasks", is_package=True) == []


def test_tests_import_only_tests_fixtures() -> None:
    violations = layout_violations()
    assert not violations, (
        "import shared helpers from tests.fixtures, never from a conftest or a test module:\n"
        + "\n".join(violations)
    )


def test_conftests_hold_only_fixtures_and_hooks() -> None:
    source = "\n".join(
        [
            "@pytest.fixture",
            "def ok(): ...",
            "def pytest_collection_modifyitems(items): ...",
            "@dataclass",
            "class Live: ...",
            "def _helper(): ...",
        ]
    )
    assert conftest_extras(source) == ["5: class Live", "6: def _helper"]
    extras = [
        f"{path.relative_to(TESTS.parent)}:{extra}"
        for path in sorted(TESTS.rglob("conftest.py"))
        for extra in conftest_extras(path.read_text(encoding="utf-8"))
    ]
    assert not extras, "move helpers out of conftest.py into tests/fixtures/:\n" + "\n".join(extras)
