"""The GPU proof is a package whose modules import each other in one direction only (read from the source, so this
test needs neither a GPU nor the modules' own imports), behind a thin ``benchmarks/gpu_proof.py`` entry."""

from __future__ import annotations

import ast
import graphlib
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
PACKAGE = BENCHMARKS / "gpu_proof"


def sibling_imports(path: Path, modules: set[str]) -> set[str]:
    """The package's modules that ``path`` imports, ``TYPE_CHECKING`` imports included (a cycle there is still a
    cycle for a reader), whether written ``from . import x``, ``from .x import y`` or ``gpu_proof.x``."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level == 0 and base.split(".")[0] != "gpu_proof":
                continue
            inner = base.removeprefix("gpu_proof").lstrip(".")
            if inner:
                found.add(inner.split(".")[0])
            else:
                found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.Import):
            found |= {a.name.split(".")[1] for a in node.names if a.name.startswith("gpu_proof.")}
    return found & modules


def import_graph() -> dict[str, set[str]]:
    modules = {p.stem for p in PACKAGE.glob("*.py")} - {"__init__"}
    return {name: sibling_imports(PACKAGE / f"{name}.py", modules) for name in modules}


def test_the_gpu_proof_is_a_package_without_import_cycles() -> None:
    graph = import_graph()
    assert {"cli", "phases", "parts", "video", "report"} <= set(graph)
    order = list(graphlib.TopologicalSorter(graph).static_order())  # raises CycleError on any cycle
    assert order.index("parts") < order.index("video") < order.index("phases") < order.index("cli")
    assert sibling_imports(PACKAGE / "__init__.py", set(graph)) == set()  # importing one module imports no other
    assert not list(BENCHMARKS.glob("gpu_proof_*.py"))  # no flat modules left beside the package


def test_the_documented_command_is_a_thin_entry_into_the_package() -> None:
    entry = BENCHMARKS / "gpu_proof.py"
    imported = {node.module for node in ast.walk(ast.parse(entry.read_text())) if isinstance(node, ast.ImportFrom)}
    assert {module for module in imported if module and module.startswith("gpu_proof")} == {"gpu_proof.cli"}
    assert len(entry.read_text().splitlines()) < 30
