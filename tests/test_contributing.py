"""CONTRIBUTING.md's recipes, as written there: a new net and data module outside the zoo package, registered the
documented way and trained through the command line, with no change to any file of zoo."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GUIDE = ROOT / "CONTRIBUTING.md"


def blocks(kind: str) -> list[tuple[str, str]]:
    """The guide's fenced blocks whose info string is ``LANG file=PATH`` (``kind=file``) or ``bash run``."""
    found = re.findall(r"```(\w+) ([^\n]*)\n(.*?)```", GUIDE.read_text(), flags=re.S)
    return [(info.split("=", 1)[-1], body) for _, info, body in found if info.startswith(kind)]


def test_a_model_and_a_data_set_from_outside_the_package_train_through_the_cli(tmp_path):
    for name, body in blocks("file="):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(body)
    [(_, command)] = blocks("run")
    args = command.split("scripts/train.py", 1)[1].replace("$PWD", str(tmp_path)).split()
    before = subprocess.run(["git", "status", "--porcelain"], cwd=ROOT, capture_output=True, text=True).stdout
    run_dir = tmp_path / "run"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "train.py"), *args, "logger=none", f"hydra.run.dir={run_dir}"],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(tmp_path), "WANDB_MODE": "offline"},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["test/acc"] >= 0.9  # the two moons, learnt by a net zoo has never seen
    config = (run_dir / "config.yaml").read_text()
    assert "mynets.TwoLayer" in config and "mydata.MoonsDataModule" in config
    assert subprocess.run(["git", "status", "--porcelain"], cwd=ROOT, capture_output=True, text=True).stdout == before


def test_a_mistyped_model_from_the_search_path_lists_the_models_found_there(tmp_path):
    for name, body in blocks("file="):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(body)
    proc = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "train.py"), f"hydra.searchpath=[file://{tmp_path}/conf]",
         "model=two_layers", "logger=none", f"hydra.run.dir={tmp_path / 'run'}"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 2
    assert "error: model=two_layers is not a zoo model; did you mean model=two_layer?" in proc.stderr
    assert not (tmp_path / "run").exists()
