"""zoo's Optuna sweeper: ``hparams_search=optuna|genetic`` on current Optuna, through its ask-and-tell API.

Hydra hands ``--multirun`` to :class:`OptunaSweeper` when ``hydra/sweeper`` is ``optuna`` (the plugin in
``hydra_plugins/zoo_optuna_sweeper`` registers it and the sampler configs below). The glue is thin; Optuna does
the work:

- the sampler (``hydra/sweeper/sampler``: tpe, random, nsgaii, cmaes, gp, grid) picks each trial's values from
  ``hydra.sweeper.params`` (Hydra's ``choice``, ``range``, ``interval``, ``tag(log, ...)``);
- the study lives in ``hparams_search.storage``: by default Optuna's journal file in the sweep folder, so a search
  stopped at any point (even killed) resumes when started again with the same command and
  ``hparams_search.study_name``;
  a database URL (``postgresql://...``) lets workers on several machines share one study, each running trials
  until the study holds ``hydra.sweeper.n_trials``;
- the pruner (``hparams_search.pruner``) stops a trial whose validation curve trails the others' (in the job:
  :mod:`zoo.pruning`);
- ``optuna-dashboard <storage>`` shows the study.

Each trial is one Hydra job, its run folder named by the trial's number. A trial whose job fails is recorded failed
and the search goes on. Kept free of torch, and of Optuna until a search starts.
"""

from __future__ import annotations

import functools
import logging
import math
import os
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hydra.core.plugins import Plugins
from hydra.plugins.sweeper import Sweeper
from omegaconf import MISSING, DictConfig, OmegaConf, open_dict, read_write

from zoo.config import build_datamodule
from zoo.console import logger_level
from zoo.errors import ZooError, report_user_errors
from zoo.internals import job_outcome
from zoo.outputs import SweepFolder
from zoo.search import (
    AUTO,
    CV_BELOW_ROWS,
    CV_FOLDS,
    PRUNED_AT,
    PRUNERS,
    check_ensemble_size,
    clock,
    minimised,
    optuna_storage,
    ranked_by,
    study_location,
)
from zoo.spec import CLASSIFICATION

WORKER = "worker"  # trial attribute: the host and process that runs it (a dead one's trial is failed on resume)
OVER_BUDGET = "over_budget"  # trial attribute: asked after another worker spent the budget, never run
RANKED_BY = "optimized_metric"  # study attribute: the metric its trials' values are (a resume must rank by the same)
SEARCHED_ON = "data"  # study attribute: the data its trials trained on (a resume must train on the same)


# -- configs (registered by the Hydra plugin) --------------------------------------------------------------------


@dataclass
class TPESamplerConf:
    _target_: str = "optuna.samplers.TPESampler"
    seed: int | None = None
    n_startup_trials: int = 10  # random trials before the model of good and bad values takes over
    multivariate: bool = False
    group: bool = False  # with multivariate: a model per set of parameters searched together (branches)
    constant_liar: bool = True  # workers sharing a study do not all pick the same values


@dataclass
class RandomSamplerConf:
    _target_: str = "optuna.samplers.RandomSampler"
    seed: int | None = None


@dataclass
class NSGAIISamplerConf:
    _target_: str = "optuna.samplers.NSGAIISampler"
    seed: int | None = None
    population_size: int = 50  # trials per generation
    mutation_prob: float | None = None
    crossover_prob: float = 0.9
    swapping_prob: float = 0.5


@dataclass
class CmaEsSamplerConf:
    _target_: str = "optuna.samplers.CmaEsSampler"
    seed: int | None = None
    n_startup_trials: int = 1
    sigma0: float | None = None


@dataclass
class GPSamplerConf:
    _target_: str = "optuna.samplers.GPSampler"
    seed: int | None = None
    n_startup_trials: int = 10


@dataclass
class GridSamplerConf:
    """Every combination of the parameters' values (``range`` and ``choice`` only), each once."""

    _target_: str = "optuna.samplers.GridSampler"
    _partial_: bool = True  # the search space comes from hydra.sweeper.params at run time
    seed: int | None = None


SAMPLERS = {
    "tpe": TPESamplerConf,
    "random": RandomSamplerConf,
    "nsgaii": NSGAIISamplerConf,
    "cmaes": CmaEsSamplerConf,
    "gp": GPSamplerConf,
    "grid": GridSamplerConf,
}


@dataclass
class OptunaSweeperConf:
    _target_: str = "hydra_plugins.zoo_optuna_sweeper.OptunaSweeper"
    defaults: list[Any] = field(default_factory=lambda: [{"sampler": "tpe"}])
    sampler: Any = MISSING
    direction: str | None = None  # maximize or minimize; unset: from optimized_metric's name (loss: minimize)
    storage: str | None = None  # a database URL or a journal file's path; unset: <sweep folder>/study.log
    study_name: str | None = None  # the same name and storage resume a search
    n_trials: int = 20  # trials in the study, all workers together
    n_jobs: int = 1  # trials handed to the launcher at once (a parallel launcher runs them together)
    pruner: str = "none"  # median, hyperband or none
    pruner_warmup_epochs: int = 5  # epochs every trial trains before it may be pruned
    pruner_startup_trials: int = 5  # trials that run in full before the median pruner prunes any
    # the search space: {key: choice(...)|range(...)|interval(...)}; a key set to null is left out
    params: dict[str, Any] | None = None
    # {"model=mlp": {key: choice(...), ...}}: searched only in the trials that took that value
    branches: dict[str, dict[str, str]] | None = None
    # wall-clock time for the search (5m, 90s, 1h): no trial starts after it, none trains past it
    budget: str | None = None
    # K >= 2: a classification search also averages its K best finished trials' class probabilities (zoo.ensemble)
    ensemble: Any = 0


# -- the sweeper -------------------------------------------------------------------------------------------------


class OptunaSweeper(Sweeper):
    """Ask the study for a trial, launch it as a Hydra job, tell the study how it ended; until the study holds
    ``n_trials`` trials."""

    def __init__(self, sampler: Any, n_trials: int, params: Any = None, branches: Any = None, **settings: Any) -> None:
        self.sampler = sampler  # instantiated by Hydra from hydra/sweeper/sampler
        self.n_trials = n_trials
        self.params = {k: v for k, v in (params or {}).items() if v is not None}  # null: left out of the search
        self.branches = {str(k): dict(v or {}) for k, v in (branches or {}).items()}
        self.settings = settings
        self.resolved: list[str] = []  # optimized_metric=auto and cv.folds=auto as read from the data: every trial's

    def setup(self, *, hydra_context: Any, task_function: Any, config: DictConfig) -> None:
        self.config = config
        self.launcher = Plugins.instance().instantiate_launcher(
            config=config, hydra_context=hydra_context, task_function=task_function
        )

    def sweep(self, arguments: list[str]) -> None:
        report_user_errors(self._sweep, arguments)

    def _sweep(self, arguments: list[str]) -> None:
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)  # zoo prints each trial's line and the summary
        s = self.settings
        if not isinstance(self.n_trials, int) or self.n_trials < 1:
            raise ZooError(f"hydra.sweeper.n_trials={self.n_trials} is not valid; give a positive number of trials")
        if s.get("pruner") not in PRUNERS:
            raise ZooError(f"hparams_search.pruner={s.get('pruner')!r} is not valid; use {', '.join(PRUNERS)}")
        seconds = duration(s.get("budget"))
        check_ensemble_size(s.get("ensemble", 0))
        deadline = None if seconds is None else time.monotonic() + seconds
        space, fixed = search_space([f"{k}={v}" for k, v in self.params.items()] + list(arguments))
        branches = [Branch.parse(when, overrides, space, fixed) for when, overrides in self.branches.items()]
        sampler = seeded_per_trial(self._sampler(space, branches), self.config.hydra.sweeper.sampler.get("seed"))
        metric = self._resolve_auto()
        direction = s.get("direction") or ("minimize" if minimised(metric) else "maximize")
        sweep_dir = Path(self.config.hydra.sweep.dir)
        storage, name = study_location(s, str(sweep_dir))
        data = searched_on(self.config.data)  # a refusal below leaves the study as it was
        study = open_study(storage, name, sampler, direction, space, branches, metric, data)
        folder = SweepFolder(sweep_dir)
        fail_interrupted(study, folder)
        done = len(counted(study.get_trials(deepcopy=False)))
        limit = f", until {s.get('budget')} have passed" if seconds is not None else ""
        cross_validated = (self.config.get("cv") or {}).get("folds") is not None  # each trial runs in full
        pruner = "none: the trials cross-validate" if cross_validated else s.get("pruner")
        print(
            f"search: study '{name}' in {storage}: {done} of {self.n_trials} trials done{limit}"
            f" ({type(sampler).__name__}, pruner {pruner}); watch it with: optuna-dashboard {storage}"
        )
        while deadline is None or time.monotonic() < deadline:
            n_jobs = max(1, s.get("n_jobs", 1))
            trials = [t for t in (ask(study, space, self.n_trials, branches) for _ in range(n_jobs)) if t]
            if not trials:
                break
            for batch in consecutive(trials):
                left = None if deadline is None else max(1.0, deadline - time.monotonic())
                self._launch(study, batch, fixed, branches, left)
        if deadline is not None and time.monotonic() >= deadline:
            ran = len(counted(study.get_trials(deepcopy=False))) - done
            print(  # the study's name unset is the time of the launch, so a bare command starts a new one
                f"search: the {s.get('budget')} budget is spent after {ran} trials; the same command with "
                f"hparams_search.study_name={name} runs more"
            )

    def _resolve_auto(self) -> str:
        """``optimized_metric`` as the trials are ranked. ``auto`` values are read from the data before the first
        trial and given to every trial (``self.resolved``): ``cv.folds=auto`` (the auto search's) cross-validates each
        trial over ``CV_FOLDS`` folds where train+val holds fewer than ``CV_BELOW_ROWS`` rows, and
        ``optimized_metric=auto`` ranks a classification by accuracy and any other task by loss, on the held-out
        folds (``cv/``) where the trials cross-validate, else on the validation split (``val/``)."""
        metric = self.config.get("optimized_metric") or ""
        folds = (self.config.get("cv") or {}).get("folds")
        if AUTO not in (metric, folds):
            return metric
        with logger_level("zoo.data", logging.ERROR):  # each trial says what reading the data showed
            data = build_datamodule(self.config.data, self.config.model)
        settled: dict[str, Any] = {}
        if folds == AUTO:
            splits = getattr(data, "splits", {})
            rows = sum(len(splits[s][1]) for s in ("train", "val")) if {"train", "val"} <= set(splits) else None
            folds = CV_FOLDS if rows is not None and rows < CV_BELOW_ROWS else None
            settled["cv.folds"] = folds
            print(
                f"search: {rows:,} training+validation rows: each trial is cross-validated over {folds} folds "
                "(cv.folds=auto; cv.folds=null to validate on one split)" if folds else
                "search: each trial is validated on the validation split (cv.folds=auto: the data is large enough)"
            )  # fmt: skip
        if metric == AUTO:
            task = data.spec.task
            metric = ranked_by(metric, classifies=task == CLASSIFICATION, cross_validated=folds is not None)
            settled["optimized_metric"] = metric
            print(f"search: {task} data: the trials are ranked by {metric} (optimized_metric=auto)")
        with read_write(self.config), open_dict(self.config):  # the callbacks read them as the multirun ends
            for key, value in settled.items():
                OmegaConf.update(self.config, key, value)
        self.resolved = [f"++{k}={'null' if v is None else v}" for k, v in settled.items()]
        return metric

    def _sampler(self, space: dict[str, Any], branches: list[Branch]) -> Any:
        """The sampler Hydra instantiated; the grid sampler (a partial) gets the search space's values."""
        sampler = self.sampler
        if isinstance(sampler, functools.partial):
            if branches:
                raise ZooError("the grid sampler cannot search hydra.sweeper.branches; use tpe or random")
            grid = {key: grid_values(key, dist) for key, dist in space.items()}
            self.n_trials = min(self.n_trials, math.prod(len(v) for v in grid.values()))
            sampler = sampler(grid)
        return sampler

    def _launch(
        self, study: Any, trials: list[Any], fixed: dict[str, str], branches: list[Branch], left: float | None
    ) -> None:
        from optuna.trial import TrialState

        name = self.config.get("name")  # one sweep folder and study, whatever model a trial takes
        own = [] if name is None else [f"++name={quoted(name)}"]
        own += [] if left is None else [f"++trainer.max_time='{clock(left)}'"]  # the budget's end stops training
        own += self.resolved
        overrides = [
            [*(f"{k}={v}" for k, v in trial.params.items()), *(f"{k}={v}" for k, v in fixed.items())]
            + [f"{k}={v}" for b in branches if b.holds(trial.params) for k, v in b.fixed.items()]
            + [*own, f"++hparams_search.trial={trial.number}"]  # the job reports to this trial (zoo.pruning)
            for trial in trials
        ]
        try:
            returns = self.launcher.launch(overrides, initial_job_idx=trials[0].number)
        except BaseException:  # Ctrl-C or SIGTERM: the search stops, its trials recorded as failed
            for trial in trials:
                if study.get_trials(deepcopy=False)[trial.number].state == TrialState.RUNNING:
                    study.tell(trial, state=TrialState.FAIL)
            raise
        stored = study.get_trials(deepcopy=False)  # as the jobs left them (a Trial object keeps its own copy)
        for trial, ret in zip(trials, returns, strict=True):
            value = job_outcome(ret)
            if PRUNED_AT in stored[trial.number].user_attrs:
                study.tell(trial, state=TrialState.PRUNED)
            elif isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
                study.tell(trial, float(value))
            else:  # the job failed (its error is in results.csv), or returned no objective
                study.tell(trial, state=TrialState.FAIL)


def search_space(overrides: list[str]) -> tuple[dict[str, Any], dict[str, str]]:
    """Optuna distributions for the sweep overrides (``choice``, ``range``, ``interval``, ``tag(log, ...)``), and
    the other overrides as given; a later override of a key replaces an earlier one."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.core.override_parser.types import Transformer
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    space: dict[str, Any] = {}
    fixed: dict[str, str] = {}
    for override in OverridesParser.create().parse_overrides(overrides):
        key = override.get_key_element()
        space.pop(key, None), fixed.pop(key, None)
        if not override.is_sweep_override():
            fixed[key] = override.get_value_element_as_str()
            continue
        value = override.value()
        if override.is_choice_sweep() or (override.is_range_sweep() and value.shuffle):
            space[key] = CategoricalDistribution(list(override.sweep_iterator(transformer=Transformer.encode)))
        elif override.is_range_sweep():  # range(start, stop, step): stop excluded, as Python's range
            numbers = (value.start, value.stop, value.step)
            if any(isinstance(n, float) for n in numbers):
                last = value.start + value.step * (math.ceil((value.stop - value.start) / value.step) - 1)
                space[key] = FloatDistribution(value.start, last, step=value.step)
            else:
                space[key] = IntDistribution(int(value.start), int(value.stop) - 1, step=int(value.step))
        elif override.is_interval_sweep():
            log = "log" in value.tags
            if isinstance(value.start, int) and isinstance(value.end, int):
                space[key] = IntDistribution(value.start, value.end, log=log)
            else:
                space[key] = FloatDistribution(value.start, value.end, log=log)
        else:  # a glob or a plain comma list: give choice(...) for a search
            raise ZooError(
                f"{override.input_line} cannot be searched; give {key}=choice(...), range(...) or interval(...)"
            )
    return space, fixed


@dataclass
class Branch:
    """Parameters searched only in the trials that took one value of a choice (``model=mlp``: the MLP's widths and
    learning rate; ``model=elm``: the ELM's ridge), and overrides given to those trials alone."""

    key: str
    value: str
    space: dict[str, Any]
    fixed: dict[str, str]
    given: str | None = None  # the key's value where the command line fixed it (model=mlp: the MLP's branch only)

    @classmethod
    def parse(cls, when: str, overrides: dict[str, str], space: dict[str, Any], given: dict[str, str]) -> Branch:
        key, sep, value = when.partition("=")
        if not sep or not (hasattr(space.get(key), "choices") or key in given):  # a value left out: never taken
            raise ZooError(
                f"hydra.sweeper.branches: '{when}' names no choice(...) of hydra.sweeper.params; give KEY=VALUE, "
                "e.g. model=mlp with model: choice(mlp, elm)"
            )
        sub, fixed = search_space([f"{k}={v}" for k, v in overrides.items()])
        return cls(key, value, sub, fixed, given.get(key))

    def holds(self, params: dict[str, Any]) -> bool:
        return str(params.get(self.key, self.given)) == self.value

    def suggest(self, trial: Any) -> None:
        """Ask ``trial`` (a trial that took this branch) for this branch's parameters."""
        from optuna.distributions import CategoricalDistribution, IntDistribution

        for key, dist in self.space.items():
            if isinstance(dist, CategoricalDistribution):
                trial.suggest_categorical(key, dist.choices)
            elif isinstance(dist, IntDistribution):
                trial.suggest_int(key, dist.low, dist.high, step=dist.step, log=dist.log)
            else:
                trial.suggest_float(key, dist.low, dist.high, step=dist.step, log=dist.log)


def expected_space(space: dict[str, Any], branches: list[Branch], params: dict[str, Any]) -> dict[str, Any]:
    """The parameters a trial with ``params`` is searched over: the space's, and those of the branches it took."""
    return {**space, **{k: d for b in branches if b.holds(params) for k, d in b.space.items()}}


def duration(budget: Any) -> float | None:
    """Seconds in ``hparams_search.budget``: a number of seconds, or a number with s, m or h (``5m``, ``1.5h``)."""
    if budget is None or str(budget).strip().lower() in ("", "none", "null"):
        return None
    text = str(budget).strip().lower()
    unit = {"s": 1, "m": 60, "h": 3600}.get(text[-1:])
    try:
        seconds = float(text[:-1] if unit else text) * (unit or 1)
    except ValueError:
        seconds = -1.0
    if not math.isfinite(seconds) or seconds <= 0:
        raise ZooError(f"hparams_search.budget={budget} is not a duration; give e.g. 5m, 90s or 1h")
    return seconds


def quoted(value: Any) -> str:
    """``value`` as a quoted string in a Hydra override."""
    return "'" + str(value).replace("\\", "\\\\").replace("'", "\\'") + "'"


def grid_values(key: str, dist: Any) -> list[Any]:
    from optuna.distributions import CategoricalDistribution

    if isinstance(dist, CategoricalDistribution):
        return list(dist.choices)
    if dist.step is None:
        raise ZooError(f"the grid sampler cannot search {key} over an interval; give {key}=choice(...) or range(...)")
    count = round((dist.high - dist.low) / dist.step) + 1
    return [dist.low + i * dist.step for i in range(count)]


def lost_race(err: Exception) -> bool:
    """Whether opening a new database failed only because another worker was creating the same tables or rows
    (PostgreSQL says UniqueViolation, an IntegrityError, or DuplicateTable, a ProgrammingError "already exists")."""
    return type(err).__name__ == "IntegrityError" or "already exists" in str(err)


def open_study(
    storage: str,
    name: str,
    sampler: Any,
    direction: str,
    space: dict[str, Any],
    branches: list[Branch] = (),
    metric: str | None = None,
    data: str | None = None,
) -> Any:
    """Create the study or load it to resume; refuse (one line, the study untouched) a storage that cannot be
    opened and a study of the same name that searched another space or direction, ranked its trials by another
    ``metric`` (``cv/acc`` where its trials cross-validated, ``val/acc`` where they did not: values that do not
    compare) or trained them on other ``data`` (:func:`searched_on`: their values do not compare either)."""
    import optuna
    from optuna.trial import TrialState

    for attempt in range(5):  # workers starting together on a new database race to create its tables
        try:
            study = optuna.create_study(
                storage=optuna_storage(storage),
                study_name=name,
                sampler=sampler,
                direction=direction,
                load_if_exists=True,
            )
            break
        except Exception as err:  # noqa: BLE001 - a wrong URL, a driver that is missing, a server that does not answer
            if attempt < 4 and lost_race(err):
                time.sleep(1 + attempt)
                continue
            first = " ".join(str(err).split())[:200]
            raise ZooError(
                f"cannot open hparams_search.storage={storage} ({type(err).__name__}: {first}); give a database URL "
                "that answers (postgresql://user:password@host/db), a file path, or leave it unset"
            ) from None
    if study.direction.name.lower() != direction:
        raise ZooError(
            f"study '{name}' in {storage} was searched to {study.direction.name.lower()}, this search would "
            f"{direction}; give another hparams_search.study_name, or hydra.sweeper.direction="
            f"{study.direction.name.lower()} to resume it"
        )
    ranked = study.user_attrs.get(RANKED_BY)
    if metric and ranked and ranked != metric:
        raise ZooError(
            f"study '{name}' in {storage} ranked its trials by {ranked}, this search would rank them by {metric}; give "
            "another hparams_search.study_name, or the optimized_metric and cv.folds it ran with to resume it"
        )
    trained_on = study.user_attrs.get(SEARCHED_ON)
    if data and trained_on and trained_on != data:
        raise ZooError(
            f"study '{name}' in {storage} searched {trained_on}, this search is on {data}; give another "
            "hparams_search.study_name, or the data it searched to resume it"
        )
    for trial in study.get_trials(deepcopy=False):
        # a trial another worker is still asking for (or one killed while asking) holds only the parameters
        # written so far, so only a trial that ran to its end tells of another space by a parameter it lacks
        theirs, ours = trial.distributions, expected_space(space, list(branches), trial.params)
        keys = theirs.keys() | ours.keys() if trial.state in (TrialState.COMPLETE, TrialState.PRUNED) else theirs.keys()
        key = next((k for k in sorted(keys) if theirs.get(k) != ours.get(k)), None)
        if key is not None:
            raise ZooError(
                f"study '{name}' in {storage} searched another space ({key}: {describe(theirs.get(key))} there, "
                f"{describe(ours.get(key))} here); give another hparams_search.study_name, or the same "
                "hydra.sweeper.params to resume it"
            )
    if metric and not ranked:
        study.set_user_attr(RANKED_BY, metric)
    if data and not trained_on:
        study.set_user_attr(SEARCHED_ON, data)
    return study


def searched_on(data: DictConfig) -> str:
    """The data a search's trials train on, as the overrides that choose it: its name, and the file and target
    where the data set takes them (a path as an absolute one, so a resume from another folder compares)."""
    parts = [f"data={data.get('name')}"]
    for key in ("path", "target"):
        value = data.get(key)
        if value not in (None, ""):
            parts.append(f"data.{key}={Path(str(value)).resolve() if key == 'path' else value}")
    return " ".join(parts)


def seeded_per_trial(sampler: Any, seed: int | None) -> Any:
    """``sampler`` drawing trial n's values from ``seed + n``. Seeded once, a sampler draws the same values for the
    first trials of every launch, so a resumed study, or a second worker on a shared one, would run its first
    trials again; trial numbers are unique in a study, so each trial draws afresh and the study still follows
    from its seed. Optuna calls ``before_trial`` as a trial is asked for, before any of its values is drawn."""
    if seed is None:
        return sampler
    from optuna.samplers import BaseSampler

    def reseed(owner: Any, value: int) -> None:  # every random state the sampler and the samplers it holds draw from
        for state in vars(owner).values():
            if isinstance(state, BaseSampler):
                reseed(state, value)
            elif type(state).__name__ == "LazyRandomState":
                state.rng.seed(value)

    before_trial = sampler.before_trial

    def reseeded(study: Any, trial: Any) -> None:
        reseed(sampler, (int(seed) + trial.number) % 2**32)
        before_trial(study, trial)

    sampler.before_trial = reseeded
    return sampler


def describe(dist: Any) -> str:
    if dist is None:
        return "not searched"
    if hasattr(dist, "choices"):
        return f"choice{tuple(dist.choices)}"
    log = ", log" if dist.log else ""
    step = f", step {dist.step}" if dist.step is not None else ""
    return f"{dist.low}..{dist.high}{step}{log}"


def counted(trials: list[Any]) -> list[Any]:
    """The trials that count toward the budget: every trial asked, run or running, except those asked after
    another worker spent the budget."""
    return [t for t in trials if not t.user_attrs.get(OVER_BUDGET)]


def ask(study: Any, space: dict[str, Any], n_trials: int, branches: list[Branch] = ()) -> Any:
    """A new trial, its branches' parameters asked for too, or None when the study holds ``n_trials`` (all workers
    together). Trial numbers are unique in a study, so where two workers ask for the last trial at once, the higher
    number is marked over budget and never run."""
    from optuna.trial import TrialState

    if len(counted(study.get_trials(deepcopy=False))) >= n_trials:
        return None
    trial = study.ask(space)
    if len(counted(t for t in study.get_trials(deepcopy=False) if t.number < trial.number)) >= n_trials:
        trial.set_user_attr(OVER_BUDGET, True)
        study.tell(trial, state=TrialState.FAIL)
        return None
    for branch in branches:
        if branch.holds(trial.params):
            branch.suggest(trial)
    trial.set_user_attr(WORKER, f"{socket.gethostname()}:{os.getpid()}")
    return trial


def fail_interrupted(study: Any, folder: SweepFolder) -> None:
    """Mark failed the trials left running by a process of this machine that is gone (a search killed, even with
    SIGKILL), and record them in the sweep folder; trials other live workers are running are left alone."""
    from optuna.trial import TrialState

    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        host, _, pid = str(trial.user_attrs.get(WORKER, "")).rpartition(":")
        if host != socket.gethostname() or not pid.isdigit() or alive(int(pid)):
            continue
        study.tell(trial.number, state=TrialState.FAIL)
        error = f"interrupted: its process ({pid}) ended before the trial did; recorded as failed on resume"
        print(f"trial {trial.number}: {error}")
        overrides = " ".join(f"{k}={v}" for k, v in trial.params.items())
        folder.add_job({"job": trial.number, "status": "failed", "objective": None, "overrides": overrides,
                        "error": error, "run_dir": str(folder.path / str(trial.number))})  # fmt: skip


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def consecutive(trials: list[Any]) -> list[list[Any]]:
    """The trials in runs of consecutive numbers: each run is one launch, its jobs numbered as its trials."""
    runs: list[list[Any]] = []
    for trial in trials:
        if runs and trial.number == runs[-1][-1].number + 1:
            runs[-1].append(trial)
        else:
            runs.append([trial])
    return runs
