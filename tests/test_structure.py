"""The house stays navigable: data flows one way between the folders, and every function and
module reads at once. Imports are read with `ast`; nothing is imported or run."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "pkgreport"

# The input layer: loading, validation, parsing, schemas, mapping and the presets.
INPUT_MODULES = ("pkgreport.inputs",)
# What each layer must never import, at run time or lazily inside a function.
FORBIDDEN: dict[str, tuple[str, ...]] = {
    "pkgreport.engine": (
        *INPUT_MODULES,
        "pkgreport.reports",
        "pkgreport.cli",
        "pkgreport.pipeline",
        "pkgreport.schedule",
        "pkgreport.demo",
    ),
    "pkgreport.reports": (
        *INPUT_MODULES,
        "pkgreport.cli",
        "pkgreport.pipeline",
        "pkgreport.schedule",
    ),
    "pkgreport.result": (
        *INPUT_MODULES,
        "pkgreport.reports",
        "pkgreport.cli",
        "pkgreport.pipeline",
    ),
}
MAX_FUNCTION_LINES = 80
MAX_MODULE_LINES = 600


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, ast.Module]:
    return {
        module_name(path): ast.parse(path.read_text(encoding="utf-8"), str(path))
        for path in sorted(PACKAGE.rglob("*.py"))
    }


def _type_checking_only(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and ast.unparse(node.test) in (
        "TYPE_CHECKING",
        "typing.TYPE_CHECKING",
    )


def imported(tree: ast.Module) -> set[str]:
    """Every module named by an import that runs (not those under `if TYPE_CHECKING:`)."""
    names: set[str] = set()
    pending: list[ast.AST] = [tree]
    while pending:
        node = pending.pop()
        if _type_checking_only(node):
            continue
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
        pending.extend(ast.iter_child_nodes(node))
    return names


def within(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def violations(trees: dict[str, ast.Module]) -> list[str]:
    found = []
    for module, tree in trees.items():
        for layer, forbidden in FORBIDDEN.items():
            if not within(module, layer):
                continue
            for name in sorted(imported(tree)):
                if any(within(name, banned) for banned in forbidden):
                    found.append(f"{module} imports {name}")
    return found


def test_data_flows_one_way_between_the_layers() -> None:
    assert violations(modules()) == []


def test_the_import_check_sees_lazy_imports_and_skips_type_checking_ones() -> None:
    tree = ast.parse(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from pkgreport.pipeline import RunResult\n"
        "def f():\n    from pkgreport import inputs\n    import pkgreport.cli\n"
    )
    assert violations({"pkgreport.reports.page": tree}) == [
        "pkgreport.reports.page imports pkgreport.cli",
        "pkgreport.reports.page imports pkgreport.inputs",
    ]


def checked_files() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def long_functions(path: Path, root: Path = PACKAGE) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            assert node.end_lineno is not None
            start = min([d.lineno for d in node.decorator_list] + [node.lineno])
            length = node.end_lineno - start + 1
            if length > MAX_FUNCTION_LINES:
                found.append(f"{path.relative_to(root)}:{node.lineno} {node.name} ({length} lines)")
    return found


def test_no_function_passes_80_lines() -> None:
    assert [f for path in checked_files() for f in long_functions(path)] == []


def test_no_module_passes_600_lines() -> None:
    lengths = {
        path.relative_to(PACKAGE).as_posix(): len(path.read_text().splitlines())
        for path in checked_files()
    }
    assert {name: n for name, n in lengths.items() if n > MAX_MODULE_LINES} == {}


@pytest.mark.parametrize("length", [80, 81])
def test_the_length_check_counts_decorators_and_body(tmp_path: Path, length: int) -> None:
    body = "".join(f"    x{i} = {i}\n" for i in range(length - 2))
    path = tmp_path / "m.py"
    path.write_text(f"@decorator\ndef f():\n{body}")
    expected = ["m.py:2 f (81 lines)"] if length > MAX_FUNCTION_LINES else []
    assert long_functions(path, tmp_path) == expected


def test_every_module_says_its_concern_in_a_docstring() -> None:
    undocumented = [
        path.relative_to(PACKAGE).as_posix()
        for path in sorted(PACKAGE.rglob("*.py"))
        if not (ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or "").strip()
    ]
    assert undocumented == []


def test_help_and_the_command_line_load_no_data_library() -> None:
    # `pkgreport --help` and a mistyped option answer at once: the data and writing libraries
    # (pandas, pandera, pygal, jinja2, xlsxwriter) load only in the commands that use them.
    import subprocess
    import sys

    heavy = ["pandas", "numpy", "pandera", "pygal", "jinja2", "xlsxwriter", "pyarrow"]
    program = (
        "import sys, pkgreport.cli\n"
        "from click.testing import CliRunner\n"
        "CliRunner().invoke(pkgreport.cli.cli, ['--help'])\n"
        f"print(sorted(m for m in {heavy!r} if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, check=True
    )
    assert out.stdout == "[]\n"
