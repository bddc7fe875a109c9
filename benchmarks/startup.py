"""Start-up and the default run: ``--help`` time, the default run's wall time with its breakdown, its peak memory.

    python benchmarks/startup.py

1. ``python scripts/train.py --help``, whole process (best of 3).
2. ``python scripts/train.py`` (the default run, W&B offline) in a temporary folder, whole process, and its peer
   ``benchmarks/peers/keras_digits.py`` (the same job as a plain Keras 3 script: MLP 64-128-10 on the digits, 30
   epochs, evaluate, a learning-curve PNG) and ``recipe=none`` (zoo's plain MLP 64-128-10 for 30 epochs: the Keras
   script's job), in turn, twice each; the faster of each pair, and the ratios. The table goes into
   benchmarks/results.md (``## Start-up and the default run, CPU``), or the file ``--out`` names.
3. The same run once more, ``scripts/train.py`` itself run inside a process that times its parts: imports (torch,
   Lightning, Hydra, zoo), the command line (checked, the recipe added), Hydra's composition, data (load, split,
   normalise), model, trainer and W&B start (W&B's import and ``wandb.init`` included), training
   (``Trainer.fit`` less the learning-curves plot), testing (``Trainer.test`` less the test figures), figures,
   W&B finish, the rest (run folder, checkpoints, metrics.json), and the interpreter's own start and exit
   (the whole process less the rest): the rows add up to the whole process. Also its peak resident memory
   (``ru_maxrss``; W&B's own service process aside).
"""

from __future__ import annotations

import contextlib
import datetime
import gc
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script: benchmarks.run writes the section
    sys.path.insert(0, str(ROOT))
ENV = {**os.environ, "WANDB_MODE": "offline", "WANDB_SILENT": "true", "PYTHONPATH": str(ROOT)}


def wall(*args: str) -> float:
    return timed(*args)[0]


def timed(*args: str, logs: str | None = None) -> tuple[float, str]:
    """Seconds of ``python ARGS`` as a whole process, and what it printed; a run's folders go under ``logs``
    (``ZOO_LOG_DIR``: the command stays as a user types it)."""
    env = ENV if logs is None else {**ENV, "ZOO_LOG_DIR": logs}
    start = time.perf_counter()
    done = subprocess.run([sys.executable, *args], cwd=ROOT, env=env, check=True, capture_output=True, text=True)
    return time.perf_counter() - start, done.stdout


def phases() -> tuple[dict[str, float], Callable[[], NoReturn]]:
    """The default run in this process, as ``scripts/train.py`` runs it (the script itself, with its arguments),
    seconds per phase and peak memory (MB). The phases add up to the time from this function's first line to the
    script's end; the parent adds the interpreter's start and exit (the whole process less that)."""
    start = time.perf_counter()
    gc.disable()  # as zoo.cli.start does before a script's imports
    import runpy
    from collections import defaultdict

    import hydra._internal.hydra

    from zoo.internals import torchmetrics_without_unused_extras

    with torchmetrics_without_unused_extras({}):  # as the script imports them for a run of zoo's own classes
        import lightning as L

    import zoo.callbacks
    import zoo.cli
    import zoo.run
    import zoo.search  # noqa: F401  (the script's own imports, as it makes them)

    end = zoo.cli.exit_without_teardown
    zoo.cli.exit_without_teardown = lambda code=0: None  # the script's last call: made after the report, below

    seconds = {"imports (torch, Lightning, Hydra, zoo)": time.perf_counter() - start}
    spent: dict[str, float] = defaultdict(float)
    inside: list[float] = []  # per timed call under way, the seconds its timed callees took: counted once, theirs

    def charge(owner, name: str, phase: str) -> None:
        """Every call of ``owner.name`` counts to ``phase`` (less what its charged callees took)."""
        inner = getattr(owner, name)

        def wrapper(*args, **kwargs):
            t = time.perf_counter()
            inside.append(0.0)
            try:
                return inner(*args, **kwargs)
            finally:
                took = time.perf_counter() - t
                spent[phase] += took - inside.pop()
                if inside:
                    inside[-1] += took

        setattr(owner, name, wrapper)

    charge(zoo.cli, "start", "command line (checked, recipe)")
    charge(hydra._internal.hydra.Hydra, "compose_config", "Hydra composition")
    charge(zoo.run, "build_datamodule", "data")
    charge(zoo.run, "build_task", "model")
    charge(zoo.run, "build_trainer", "trainer and W&B start (W&B imported)")
    charge(L.Trainer, "fit", "training")
    charge(L.Trainer, "test", "testing")
    charge(zoo.callbacks.RunOutputs, "on_fit_end", "figures")  # inside fit: the learning curves
    charge(zoo.callbacks.TestReport, "on_test_epoch_end", "figures")  # inside test: confusion matrix...
    charge(zoo.run, "finish_wandb", "W&B finish")
    sys.argv = [str(ROOT / "scripts" / "train.py")]  # the bare command; its folders go under ZOO_LOG_DIR
    t = time.perf_counter()
    runpy.run_path(sys.argv[0], run_name="__main__")
    script = time.perf_counter() - t
    seconds.update(spent)
    seconds["rest (run folder, checkpoints, metrics.json)"] = script - sum(spent.values())
    seconds["total"] = time.perf_counter() - start
    seconds["peak memory MB"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return seconds, end


def main() -> None:
    if sys.argv[1:] == ["--phases"]:  # the child of step 3: before argparse, whose import would be timed
        seconds, end = phases()
        print(json.dumps(seconds))
        end()  # the process ends as the script's does
    import argparse

    from benchmarks.common import results_file

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, help="the Markdown file (default benchmarks/results.md)")
    results = results_file(parser, parser.parse_args().out)
    help_s = min(wall("scripts/train.py", "--help") for _ in range(3))
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        runs, plain_runs, keras_runs = [], [], []
        for i in range(2):  # in turn: a slower minute slows each
            runs.append(timed("scripts/train.py", logs=f"{tmp}/logs{i}"))
            plain_runs.append(timed("scripts/train.py", "recipe=none", logs=f"{tmp}/plain{i}"))
            with contextlib.suppress(subprocess.CalledProcessError):  # keras missing: pip install .[bench]
                keras_runs.append(timed("benchmarks/peers/keras_digits.py", f"{tmp}/keras{i}"))
        whole, out = timed(__file__, "--phases", logs=f"{tmp}/phases")
    breakdown = json.loads(out.strip().splitlines()[-1])
    memory = breakdown.pop("peak memory MB")
    breakdown["interpreter start and exit"] = whole - breakdown.pop("total")
    (run_s, run_out), (plain_s, plain_out) = min(runs), min(plain_runs)

    def accuracy(printed: str) -> str:
        return next((w.split("=")[1] for w in printed.split() if w.startswith("test/acc=")), "-")

    rows = [
        "| command | whole process | test/acc |",
        "|---|---|---|",
        f"| `python scripts/train.py --help` | {help_s:.2f} s (best of 3) | |",
        f"| `python scripts/train.py` (the default run, W&B offline) | {run_s:.1f} s (best of 2) | "
        f"{accuracy(run_out)} |",
        f"| `python scripts/train.py recipe=none` (MLP 64-128-10, 30 epochs) | {plain_s:.1f} s (best of 2) | "
        f"{accuracy(plain_out)} |",
    ]
    if keras_runs:
        keras_s, keras_out = min(keras_runs)
        rows.append(
            f"| `python benchmarks/peers/keras_digits.py` (its Keras 3 peer) | {keras_s:.1f} s (best of 2) | "
            f"{keras_out.split()[2].rstrip(',')} |"
        )
    phase_rows = [f"| {phase} | {seconds:.2f} s |" for phase, seconds in breakdown.items()]
    from benchmarks.run import HEADER, cpu_model, versions, with_section  # here: --phases times its own imports

    text = "\n".join(
        [
            "## Start-up and the default run, CPU",
            "",
            "`python benchmarks/startup.py`",
            "",
            f"{datetime.date.today()}, {cpu_model()}, {os.cpu_count()} cores; {versions()}; load average {load:.1f} "
            f"at start, {os.getloadavg()[0]:.1f} at the end",
            "",
            *rows,
            "",
            "The default run once more, by phase (`--phases`: the script run inside a process that times its parts):",
            "",
            "| phase | time |",
            "|---|---|",
            *phase_rows,
            f"| **whole process** | **{whole:.2f} s** (peak memory {memory:.0f} MB) |",
        ]
    )
    print(text)
    if keras_runs:
        print(f"keras/zoo: {keras_s / run_s:.2f} (the default run), {keras_s / plain_s:.2f} (recipe=none)")
    else:
        print("keras peer: not installed (pip install .[bench])")
    results.write_text(with_section(results.read_text() if results.is_file() else HEADER, text))


if __name__ == "__main__":
    main()
