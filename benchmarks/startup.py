"""Start-up and the default run: ``--help`` time, the default run's wall time with its breakdown, its peak memory.

    python benchmarks/startup.py

1. ``python scripts/train.py --help``, whole process (best of 3).
2. ``python scripts/train.py`` (MLP on digits, W&B offline) in a temporary folder, whole process.
3. The same run again inside one process, timed by phase: imports (torch, Lightning, Hydra, W&B, zoo), data (load,
   split, normalise), training (``Trainer.fit`` less the learning-curves plot), testing (``Trainer.test`` less
   the test figures), writing outputs (config, plots, figures, metrics.json, W&B set-up and finish: the rest of
   ``zoo.run.train``), and the process's peak resident memory (``ru_maxrss``; W&B's own service process aside).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "WANDB_MODE": "offline", "WANDB_SILENT": "true", "PYTHONPATH": str(ROOT)}


def wall(*args: str, cwd: Path = ROOT) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, *args], cwd=cwd, env=ENV, check=True, capture_output=True)
    return time.perf_counter() - start


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
    with tempfile.TemporaryDirectory() as tmp:
        run_s = wall("scripts/train.py", f"hydra.run.dir={tmp}/run", "paths.log_dir=" + f"{tmp}/logs")
        out = subprocess.run(
            [sys.executable, __file__, "--phases", f"{tmp}/phases"], env=ENV, check=True, capture_output=True, text=True
        ).stdout
    breakdown = json.loads(out.strip().splitlines()[-1])
    print(f"load average {os.getloadavg()[0]:.1f}")
    print(f"python scripts/train.py --help: {help_s:.2f} s (whole process, best of 3)")
    print(f"python scripts/train.py (default run): {run_s:.1f} s (whole process)")
    for key, value in breakdown.items():
        print(f"  {key}: {value:.2f}" + ("" if "MB" in key else " s"))


if __name__ == "__main__":
    main()
