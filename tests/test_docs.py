"""The manual: README stays short and its commands run as written; the documentation site builds with every link and
page checked (`mkdocs build --strict`), its reference written from conf/; nothing user-facing speaks of how zoo was
made rather than what it does."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT
from zoo.cli import groups
from zoo.config import CONF_DIR, group_options

README = (ROOT / "README.md").read_text()
# A line that names a file or folder the user brings, or something only a network or a GPU gives, is not run here.
NEEDS_THE_USER = ("<", "data.path=", "model.weights=", "FILE", "FOLDER", "DIR", "pretrained=true", "data=cifar10",
                  "data=mnist ", "accelerator=gpu", "trainer=ddp")  # fmt: skip
SHORTER = {"train.py": ["trainer.max_epochs=2"], "compare.py": ["epochs=2"]}


def readme_commands() -> list[str]:
    """The `python ...` lines of the README's bash blocks, in order."""
    blocks = re.findall(r"```bash\n(.*?)```", README, flags=re.S)
    lines = [line.split("  #")[0].strip() for block in blocks for line in block.splitlines()]
    return [line for line in lines if line.startswith("python ")]


def shortened(command: str) -> list[str]:
    """The command as this test runs it: this Python, the scripts by their path in the clone, fewer epochs/trials."""
    words = shlex.split(command)
    words[0] = sys.executable
    if len(words) > 1 and words[1].startswith("scripts/"):
        script = words[1].removeprefix("scripts/")
        words[1] = str(ROOT / words[1])
        words += SHORTER.get(script, [])
        if "hparams_search=optuna" in words:
            words += ["hydra.sweeper.n_trials=2"]
    return words


def test_the_readme_is_a_short_manual():
    assert len(README.splitlines()) < 250
    for section in ("## Set up", "## A five-minute tour", "## What there is", "## Where next"):
        assert section in README


@pytest.mark.slow
def test_the_readmes_commands_run_as_written_on_a_fresh_clone(tmp_path):
    """Every command line of the README that needs no file of the user's, in order, in an empty folder (the tour
    builds on itself: the iris run is evaluated, predicted and exported), with fewer epochs and trials."""
    commands = [c for c in readme_commands() if not any(mark in c for mark in NEEDS_THE_USER)]
    assert len(commands) >= 10 and any("predict.py" in c for c in commands) and any("--multirun" in c for c in commands)
    env = {**os.environ, "WANDB_MODE": "offline", "ZOO_LOG_DIR": str(tmp_path / "logs")}
    for command in commands:
        proc = subprocess.run(shortened(command), cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, f"{command}\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}"
    assert (tmp_path / "runs" / "iris" / "checkpoints" / "last.ckpt").is_file()
    assert list((tmp_path / "logs" / "export").rglob("model.onnx"))


def test_the_site_builds_strictly_with_its_reference_written_from_conf(tmp_path):
    site = tmp_path / "site"
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)], cwd=ROOT,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"}, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    reference = (site / "reference" / "config" / "index.html").read_text()
    for group in groups():
        for option in group_options(group, [CONF_DIR], aliases=False):
            assert f"{group}={option}" in reference, f"{group}={option}"
    assert "config groups (GROUP=OPTION" in (site / "cli" / "index.html").read_text()  # --help, as the script prints it
    course_map = (site / "course-map" / "index.html").read_text()
    assert "Introdução ao Deep Learning com R" in course_map and "Redes Neurais e Deep Learning" in course_map
    assert "zoo/hand-written" in (site / "benchmarks" / "index.html").read_text()  # benchmarks/results.md, included


def test_old_experiment_names_are_left_out_of_help_and_reference_but_still_named():
    current = group_options("experiment", [CONF_DIR], aliases=False)
    old = set(group_options("experiment", [CONF_DIR])) - set(current)
    assert "ex01_linear_regression" in old and "intro_exercicio01_linear_regression" in current


USER_FACING = ("README.md", "CONTRIBUTING.md", "docs/", "conf/", "zoo/", "scripts/", "benchmarks/", "notebooks/",
               "tests/", "Makefile", "pyproject.toml", "mkdocs.yml", ".ci/")  # fmt: skip
HOW_IT_WAS_MADE = re.compile(r"stop [0-9]|lent to|seed 00[04]", re.IGNORECASE)


def test_nothing_user_facing_speaks_of_how_zoo_was_made():
    tracked = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT, capture_output=True,
                             text=True, check=True).stdout.split()  # fmt: skip
    files = [f for f in tracked if f.startswith(USER_FACING) and f != "tests/test_docs.py" and "rendered" not in f]
    found = [
        f"{name}:{number}: {line.strip()}"
        for name in files
        if (path := ROOT / name).is_file() and path.suffix not in (".png", ".ckpt")
        for number, line in enumerate(path.read_text(errors="ignore").splitlines(), 1)
        if HOW_IT_WAS_MADE.search(line)
    ]
    assert not found, "\n".join(found)


def test_every_docs_page_is_in_the_site_navigation():
    import yaml

    def pages(nav):
        for entry in nav:
            value = next(iter(entry.values())) if isinstance(entry, dict) else entry
            yield from pages(value) if isinstance(value, list) else [value]

    nav = set(pages(yaml.safe_load((ROOT / "mkdocs.yml").read_text())["nav"]))
    written = {str(p.relative_to(ROOT / "docs")) for p in Path(ROOT / "docs").rglob("*.md")}
    assert written == nav
