"""The shape of the code: layers import downward only, private internals of Lightning, Hydra and Optuna stay behind
one door, and no import of zoo's own hides inside a function."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "zoo"
PRIVATE = ("_batches_that_stepped", "_current_fx_name", "_run_early_stopping_check", "hydra._internal",
           "._trainer", "_return_value", "optim_step_progress", "_hydra_subprocess_cmd", "._storage",
           "._study_id")  # fmt: skip


def test_import_contracts_hold():
    """pyproject.toml's import-linter contracts: the layers, and no cycle inside a package. In its own process:
    import-linter configures logging for the whole process it runs in."""
    code = (
        "import sys; from importlinter.cli import lint_imports; "
        "sys.exit(lint_imports(config_filename='pyproject.toml', no_cache=True, no_logo=True))"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]


def test_private_internals_of_lightning_hydra_and_optuna_live_in_one_module():
    found = {
        f"{path.relative_to(ROOT)}: {name}"
        for path in PACKAGE.rglob("*.py")
        if path.name != "internals.py"
        for name in PRIVATE
        if name in path.read_text()
    }
    assert not found, f"use zoo/internals.py instead: {sorted(found)}"


def test_no_import_of_zoo_inside_a_function():
    hidden = []
    for path in [*PACKAGE.rglob("*.py"), *(ROOT / "hydra_plugins").rglob("*.py")]:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                for inner in ast.walk(node):
                    names = [inner.module or ""] if isinstance(inner, ast.ImportFrom) else []
                    names += [a.name for a in inner.names] if isinstance(inner, ast.Import) else []
                    hidden += [f"{path.relative_to(ROOT)}:{inner.lineno} {n}" for n in names if n.startswith("zoo")]
    assert not hidden, f"import at the module's top (a cycle shows in the layers contract): {hidden}"
