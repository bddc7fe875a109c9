"""Multiruns and hyperparameter searches (``--multirun``, ``hparams_search=grid|optuna|genetic``).

A failing job is reported (``error: job N: ...``), recorded with its status and error, and the other jobs run on;
at the end :class:`SweepResults` writes ``results.csv`` (sorted by ``optimized_metric`` when there is one),
``best.yaml`` (the best job's config) and the figures that draw the jobs together at the sweep folder's root.
Ctrl-C or SIGTERM stops the whole search after the job it interrupted is recorded (its checkpoint saved), with the
same summary and 128 + the signal's number.
For Optuna searches (:mod:`zoo.sweeper`) it also holds the pruners and the study's place; a trial the pruner
stopped is listed as ``pruned``. Kept free of torch: Hydra loads it at start.
"""

from __future__ import annotations

import logging
import math
import os
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from zoo.config import register_resolvers
from zoo.errors import Interrupted, ZooError, report_user_errors
from zoo.internals import job_outcome
from zoo.outputs import RunFolder, SweepFolder

log = logging.getLogger(__name__)
MINIMISED = ("loss", "rmse", "mae", "mse")  # metric names where lower is better
PRUNERS = ("median", "hyperband", "none")  # hparams_search.pruner
AUTO = "auto"  # optimized_metric=auto: val/acc for classification, val/loss for any other task (ranked_by)
# added to each trial by the sweeper, not the search's settings
SWEEPER_OWN = ("++name=", "++trainer.max_time=", "++hparams_search.trial=", "++optimized_metric=", "++cv.folds=")
# cv.folds=auto (the auto search's): each trial cross-validated over CV_FOLDS folds where train+val holds fewer than
# CV_BELOW_ROWS rows; there a validation split of 10% is 100-odd rows, one row is near a point of accuracy, and the
# best of a hundred trials on it is chosen as much by chance as by skill
CV_FOLDS = 5
CV_BELOW_ROWS = 2000
PRUNED_AT = "pruned_at_epoch"  # the Optuna trial attribute a pruned job sets (zoo.pruning), the sweeper reads
_last_error: str | None = None  # the failing job's error, for SweepResults.on_job_end (same process)
_interrupted: Interrupted | None = None  # Ctrl-C or SIGTERM stopped the job: the search ends after recording it
_pruned: str | None = None  # why this job stopped short (the pruner, zoo.pruning; the time, a cross-validation)


def check_ensemble_size(value: Any) -> int:
    """``hparams_search.ensemble``: how many of the best trials to average (``zoo.ensemble``); 0 or 1 is none."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    raise ZooError(f"hparams_search.ensemble={value!r} is not valid; give how many best trials to average (0: none)")


def run_job(fn: Callable[[DictConfig], dict[str, float]], cfg: DictConfig) -> float | dict[str, float] | None:
    """Run ``fn(cfg)``; returns ``optimized_metric``'s value when set (what a sweeper optimises), else the metrics.

    Alone, a user error exits with one line (status 2); in a multirun the job is recorded as failed and returns
    None, so the sweep goes on (an Optuna sweeper marks the trial failed), unless Ctrl-C or SIGTERM stopped it.
    """
    global _last_error, _interrupted, _pruned
    _last_error, _interrupted, _pruned = None, None, None
    if not _in_multirun():
        return report_user_errors(lambda c: objective(c, fn(c)), cfg)
    try:
        return objective(cfg, fn(cfg))
    except Exception as err:
        if os.environ.get("HYDRA_FULL_ERROR") == "1":
            raise
        if isinstance(err, SweepError):
            print(f"error: job {_job_num()}: {err}; the search stops: every job would fail alike", file=sys.stderr)
            sys.exit(err.exit_code)
        _last_error = f"{type(err).__name__ + ': ' if not isinstance(err, ZooError) else ''}{err}".splitlines()[0]
        if not isinstance(err, ZooError):
            log.exception("job failed")  # a bug, not a config mistake: the traceback goes to the job's log
        if isinstance(err, Interrupted):
            _interrupted = err
        stops = "; the search stops" if _interrupted else ""
        print(f"error: job {_job_num()}: {_last_error}{stops}", file=sys.stderr)
        return None


class SweepError(ZooError):
    """A mistake every job of a multirun would repeat (an ``optimized_metric`` the runs do not report): the sweep
    stops at its first job instead of training them all."""


def objective(cfg: DictConfig, metrics: dict[str, float]) -> float | dict[str, float]:
    key = cfg.get("optimized_metric")
    if not key:
        return metrics
    key = ranked_by_metrics(key, metrics)  # auto outside the Optuna sweeper, which resolves it first
    if key not in metrics:
        raise SweepError(f"optimized_metric={key!r} is not a metric of this run; choose one of {', '.join(metrics)}")
    return float(metrics[key])


def ranked_by(metric: str, classifies: bool, cross_validated: bool = False) -> str:
    """``optimized_metric`` as the runs are ranked: ``auto`` is ``val/acc`` where they classify, else ``val/loss``;
    ``cv/acc`` and ``cv/loss`` (each fold's score on the rows it held out, averaged) where each run cross-validates."""
    if metric != AUTO:
        return metric
    split = "cv" if cross_validated else "val"
    return f"{split}/acc" if classifies else f"{split}/loss"


def ranked_by_metrics(metric: str, reported: Iterable[str]) -> str:
    """:func:`ranked_by`, told by the metrics the runs reported whether they classify and cross-validate."""
    keys = set(reported)
    return ranked_by(metric, classifies=bool({"val/acc", "cv/acc"} & keys), cross_validated="cv/loss" in keys)


def clock(seconds: float) -> str:
    """``seconds`` as Lightning's ``max_time`` reads it: DD:HH:MM:SS."""
    s = math.ceil(seconds)
    return f"{s // 86400:02d}:{s // 3600 % 24:02d}:{s // 60 % 60:02d}:{s % 60:02d}"


def clock_seconds(max_time: Any) -> float | None:
    """The seconds in a ``trainer.max_time`` of the form DD:HH:MM:SS; None for any other (none, a dict)."""
    parts = str(max_time).split(":")
    if len(parts) != 4 or not all(p.strip().isdigit() for p in parts):
        return None
    days, hours, minutes, seconds = (int(p) for p in parts)
    return float(((days * 24 + hours) * 60 + minutes) * 60 + seconds)


def minimised(metric: str) -> bool:
    return metric.rsplit("/", 1)[-1].endswith(MINIMISED)


def record_pruned(why: str) -> None:
    """This job stopped short (``why``: the pruner after an epoch, the time limit after some of its folds): its row
    in results.csv says ``pruned``, listed but never the best nor in an ensemble."""
    global _pruned
    _pruned = why


def study_location(sweeper: Any, sweep_dir: str) -> tuple[str, str]:
    """The study's storage and name: ``hparams_search.storage`` (unset: Optuna's journal file ``study.log`` in the
    sweep folder) and ``hparams_search.study_name`` (unset: the sweep folder's name)."""
    return sweeper.get("storage") or f"{sweep_dir}/study.log", sweeper.get("study_name") or Path(sweep_dir).name


def optuna_storage(storage: str) -> Any:
    """What Optuna opens for ``storage``: a database URL (``postgresql://...``, ``sqlite:///...``) as it is; a path,
    Optuna's journal file there (one line appended per change: a trial's report costs a fraction of a millisecond,
    where a SQLite file spends milliseconds on each)."""
    if "://" in storage:
        return storage
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    Path(storage).parent.mkdir(parents=True, exist_ok=True)
    return JournalStorage(JournalFileBackend(storage))


def make_pruner(name: str, warmup_epochs: int, startup_trials: int, max_epochs: int) -> Any:
    """Optuna's pruner for ``hparams_search.pruner``: ``median`` stops a trial whose objective after an epoch
    trails the median of earlier trials at that epoch; ``hyperband`` runs brackets of successive halving between
    ``warmup_epochs`` and ``max_epochs``; ``none`` never prunes."""
    import optuna

    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=startup_trials, n_warmup_steps=warmup_epochs)
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=max(1, warmup_epochs), max_resource=max(2, max_epochs))
    return optuna.pruners.NopPruner()


def _in_multirun() -> bool:
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


def _job_num() -> int:
    from hydra.core.hydra_config import HydraConfig

    return HydraConfig.get().job.num


try:  # a Hydra callback when Hydra is there (it always is for the scripts)
    from hydra.experimental.callback import Callback
except ImportError:  # pragma: no cover
    Callback = object


class SweepResults(Callback):
    """Hydra callback: one row per multirun job (``jobs.jsonl``), then ``results.csv``, ``best.yaml`` and the
    figures that draw the jobs together (``overlay.png`` and, where they apply, ``complexity.png``, ``weights.png``,
    ``gd_paths.png``). They all go to the multirun's folder as it starts: in a sweep over the model or the data
    each job's own folder is under its experiment's name, but the multirun's results stay together."""

    sweep_dir: str | None = None

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        self.sweep_dir = str(config.hydra.sweep.dir)

    def _sweep(self, config: DictConfig) -> SweepFolder:
        return SweepFolder(self.sweep_dir or config.hydra.sweep.dir)

    def on_job_end(self, config: DictConfig, job_return: Any, **kwargs: Any) -> None:
        from hydra.core.utils import JobStatus
        from hydra.types import RunMode

        if config.hydra.mode != RunMode.MULTIRUN:
            return
        value = job_outcome(job_return)
        failed = job_return.status != JobStatus.COMPLETED or _last_error is not None
        error = _last_error or (str(value).splitlines()[0] if isinstance(value, BaseException) else "")
        run = RunFolder(config.paths.output_dir)
        metrics = run.read_metrics() if not failed else {}
        status = "failed" if failed else "ok" if _pruned is None else "pruned"
        row = {
            "job": config.hydra.job.num,
            "status": status,
            "objective": float(value) if isinstance(value, int | float) and not failed else None,
            "overrides": " ".join(o for o in job_return.overrides or [] if not o.startswith(SWEEPER_OWN)),
            **metrics,
            "error": error or (_pruned if status == "pruned" else ""),
            "run_dir": str(run.path),
        }
        sweep = self._sweep(config)
        sweep.add_job(row)
        if _interrupted is not None:  # the jobs not yet run are not started: summary, then the signal's exit code
            self.on_multirun_end(config, exit_code=_interrupted.exit_code)

    def on_multirun_end(self, config: DictConfig, exit_code: int = 1, **kwargs: Any) -> None:
        """``results.csv`` and ``best.yaml``, the figures and ``summary.md`` that put the jobs side by side, a line on
        the best job, each failed job's error; ``exit_code`` when any job failed."""
        sweep = self._sweep(config)
        rows = sweep.jobs()
        if not rows:
            return
        metric = config.get("optimized_metric")
        if metric:  # auto in a sweep other than Optuna's: as objective() scored the jobs
            metric = ranked_by_metrics(metric, (k for r in rows for k in r))
        best = sweep.write_results(rows, metric, minimise=bool(metric) and minimised(metric))
        failed = [r for r in rows if r["status"] == "failed"]
        pruned = sum(r["status"] == "pruned" for r in rows)
        draw_figures(sweep, rows)  # before the closing lines: the run's last lines stay where the results are
        try:
            if sweep.write_summary(rows):
                print(f"what each job showed, side by side: {sweep.path / 'summary.md'}")
        except OSError as err:  # a summary is a bonus: the results are already written
            print(f"summary.md not written: {err}")
        print(
            f"multirun: {len(rows) - len(failed)} of {len(rows)} jobs finished"
            + (f" ({pruned} pruned)" if pruned else "")
            + f"; results: {sweep.path / 'results.csv'}"
        )
        if best is not None:
            held_out = "test/" + metric.split("/", 1)[-1]  # the best job's score on data no job was chosen by
            tested = f", {held_out} = {best[held_out]:.4f}" if isinstance(best.get(held_out), float) else ""
            print(
                f"best {metric} = {best['objective']:.4f}{tested} (job {best['job']}: {best['overrides']}); "
                f"its config: {sweep.path / 'best.yaml'}"
            )
        if failed:
            for row in failed:
                print(f"error: job {row['job']} ({row['overrides']}) failed: {row['error']}", file=sys.stderr)
            sys.exit(exit_code)


def draw_figures(sweep: SweepFolder, rows: list[dict[str, Any]]) -> None:
    """The figures that draw the jobs together, after results.csv is written: one line naming them (and the time
    they took), one line per figure that failed and why; nothing here can fail the multirun."""
    start = time.perf_counter()
    try:
        written, problems = sweep.write_figures(rows)
    except Exception as err:  # reading the jobs' folders failed: the results stand
        written, problems = [], [f"figures not drawn: {type(err).__name__}: {err}".splitlines()[0]]
    usable = len(rows) - len([r for r in rows if r["status"] == "failed"])
    if written:
        names = ", ".join(path.name for path in written)
        print(f"figures: {names} ({time.perf_counter() - start:.1f} s) in {sweep.path}")
    elif len(rows) >= 2 and not problems:
        print(f"figures: none; they need 2 finished jobs with a history.csv ({usable} finished)")
    for line in problems:
        print(f"figures: {line}")


register_resolvers()  # the ${repeat:...} resolver the search configs use, once Hydra loads this module
