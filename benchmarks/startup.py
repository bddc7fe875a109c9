"""Start-up and the default run: ``--help`` time, the default run's wall time with its breakdown, its peak memory.

    python benchmarks/startup.py

1. ``python scripts/train.py --help``, whole process (best of 3).
2. ``python scripts/train.py`` (the default run, W&B offline) in a temporary folder, whole process, and its peer
   ``benchmarks/peers/keras_digits.py`` (the same job as a plain Keras 3 script: MLP 64-128-10 on the digits, 30
   epochs, evaluate, a learning-curve PNG) and ``recipe=none`` (zoo's plain MLP 64-128-10 for 30 epochs: the Keras
   script's job), in turn, twice each; the faster of each pair, and the ratios. The table goes into
   benchmarks/results.md (``## Start-up and the default run, CPU``).
3. The same run again inside one process, timed by phase: imports (torch, Lightning, Hydra, W&B, zoo), data (load,
   split, normalise), training (``Trainer.fit`` less the learning-curves plot), testing (``Trainer.test`` less
   the test figures), writing outputs (config, plots, figures, metrics.json, W&B set-up and finish: the rest of
   ``zoo.run.train``), and the process's peak resident memory (``ru_maxrss``; W&B's own service process aside).
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script: benchmarks.run writes the section
    sys.path.insert(0, str(ROOT))
ENV = {**os.environ, "WANDB_MODE": "offline", "WANDB_SILENT": "true", "PYTHONPATH": str(ROOT)}


def wall(*args: str, cwd: Path = ROOT) -> float:
    return timed(*args, cwd=cwd)[0]


def timed(*args: str, cwd: Path = ROOT) -> tuple[float, str]:
    """Seconds of ``python ARGS`` as a whole process, and what it printed."""
    start = time.perf_counter()
    done = subprocess.run([sys.executable, *args], cwd=cwd, env=ENV, check=True, capture_output=True, text=True)
    return time.perf_counter() - start, done.stdout


def phases(folder: Path) -> dict[str, float]:
    """The default run in this process, seconds per phase and peak memory (MB)."""
    import resource

    start = time.perf_counter()
    import lightning as L

    import zoo.callbacks
    import zoo.run
    from zoo.config import compose_config

    seconds = {"imports": time.perf_counter() - start}
    spent = dict.fromkeys(["data", "training", "testing", "curves", "test figures"], 0.0)

    def timed(owner, name: str, phase: str) -> None:
        inner = getattr(owner, name)

        def wrapper(*args, **kwargs):
            t = time.perf_counter()
            try:
                return inner(*args, **kwargs)
            finally:
                spent[phase] += time.perf_counter() - t

        setattr(owner, name, wrapper)

    timed(zoo.run, "build_datamodule", "data")
    timed(L.Trainer, "fit", "training")
    timed(L.Trainer, "test", "testing")
    timed(zoo.callbacks.RunOutputs, "on_fit_end", "curves")  # inside fit: the learning curves
    timed(zoo.callbacks.TestReport, "on_test_epoch_end", "test figures")  # inside test: confusion matrix...
    cfg = compose_config([], folder)
    t = time.perf_counter()
    zoo.run.train(cfg)
    total = time.perf_counter() - t
    seconds["data"] = spent["data"]
    seconds["training"] = spent["training"] - spent["curves"]
    seconds["testing"] = spent["testing"] - spent["test figures"]
    seconds["writing outputs"] = total - seconds["data"] - seconds["training"] - seconds["testing"]
    seconds["peak memory MB"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return seconds


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--phases":
        print(json.dumps(phases(Path(sys.argv[2]))))
        return
    help_s = min(wall("scripts/train.py", "--help") for _ in range(3))
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        runs, plain_runs, keras_runs = [], [], []
        for i in range(2):  # in turn: a slower minute slows each
            runs.append(timed("scripts/train.py", f"hydra.run.dir={tmp}/run{i}", f"paths.log_dir={tmp}/logs{i}"))
            plain_runs.append(
                timed("scripts/train.py", "recipe=none", f"hydra.run.dir={tmp}/plain{i}", f"paths.log_dir={tmp}/p{i}")
            )
            with contextlib.suppress(subprocess.CalledProcessError):  # keras missing: pip install .[bench]
                keras_runs.append(timed("benchmarks/peers/keras_digits.py", f"{tmp}/keras{i}"))
        out = subprocess.run(
            [sys.executable, __file__, "--phases", f"{tmp}/phases"], env=ENV, check=True, capture_output=True, text=True
        ).stdout
    breakdown = json.loads(out.strip().splitlines()[-1])
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
    phases_line = ", ".join(f"{k} {v:.2f}" + ("" if "MB" in k else " s") for k, v in breakdown.items())
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
            f"The default run inside one process, by phase: {phases_line}.",
        ]
    )
    print(text)
    if keras_runs:
        print(f"keras/zoo: {keras_s / run_s:.2f} (the default run), {keras_s / plain_s:.2f} (recipe=none)")
    else:
        print("keras peer: not installed (pip install .[bench])")
    results = ROOT / "benchmarks" / "results.md"
    results.write_text(with_section(results.read_text() if results.is_file() else HEADER, text))


if __name__ == "__main__":
    main()
