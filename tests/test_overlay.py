"""A multirun draws its jobs together in its sweep folder: their curves on shared axes (overlay.png), the
model-complexity graph (complexity.png), the weights of an L1/L2 sweep (weights.png), the gradient-descent paths of
linear runs (gd_paths.png). The figures hold the jobs' own numbers and never break the sweep's results."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from tests.test_cli import script
from zoo.outputs import SweepFolder
from zoo.plots.overlay import job_labels, numeric_setting, split_overrides, subsample

FAST = ("logger=none", "data=iris", "trainer.max_epochs=2", "callbacks=none")


def results(sweep_dir: Path) -> list[dict[str, str]]:
    return list(csv.DictReader((sweep_dir / "results.csv").open()))


def write_job(sweep: Path, job: int, overrides: str, history: list[dict[str, float]] | None, status: str = "ok",
              config: str = "") -> dict:  # fmt: skip
    """A job's run folder as a run writes it (history.csv, config.yaml) and its row as jobs.jsonl records it."""
    run = sweep / str(job)
    run.mkdir(parents=True, exist_ok=True)
    if history is not None:
        with (run / "history.csv").open("w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(history[0]))
            writer.writeheader()
            writer.writerows(history)
    if config:
        (run / "config.yaml").write_text(config)
    row = {"job": job, "status": status, "objective": None, "overrides": overrides, "test/acc": 0.5 + job / 10,
           "error": "boom" if status == "failed" else "", "run_dir": str(run)}  # fmt: skip
    SweepFolder(sweep).add_job(row)
    return row


def history(train: list[float], val: list[float]) -> list[dict[str, float]]:
    return [
        {"epoch": i + 1, "train/loss": t, "val/loss": v, "val/acc": 1 - v / 2}
        for i, (t, v) in enumerate(zip(train, val, strict=True))
    ]


def test_labels_keep_only_the_keys_that_differ_between_jobs():
    overrides = [
        "experiment=x data.batch_size=1 optimizer.lr=0.1",
        "experiment=x data.batch_size=full optimizer.lr=0.1",
    ]
    assert job_labels(overrides) == ["batch_size=1", "batch_size=full"]
    assert split_overrides("a=1 model.net.hidden=[8, 8] +b='x y'") == {
        "a": "1",
        "model.net.hidden": "[8, 8]",
        "b": "'x y'",
    }
    assert job_labels(["a.x=1 b.x=2", "a.x=1 b.x=3"]) == ["x=2", "x=3"]
    assert job_labels(["a.x=1 b.x=2", "a.x=2 b.x=3"]) == ["a.x=1, b.x=2", "a.x=2, b.x=3"]  # tails clash: full keys
    assert job_labels(["a=1", "a=1"]) == ["job 0", "job 1"]
    hidden = ["model=mlp model.net.hidden=[2]", "model=mlp model.net.hidden=[32]", "model=mlp model.net.hidden=[512]"]
    assert numeric_setting(hidden) == ("model.net.hidden", [2.0, 32.0, 512.0])
    assert numeric_setting(["data.batch_size=1", "data.batch_size=full"]) is None  # not a number
    assert numeric_setting(["a=1 b=1", "a=2 b=2"]) is None  # two settings vary: no single x axis


def test_the_curves_are_each_jobs_own_history_and_follow_it(tmp_path):
    rows = [write_job(tmp_path, j, f"model.net.hidden=[{w}]", history([1.0 / w, 0.5 / w], [1.2 / w, 0.9 / w]))
            for j, w in enumerate((2, 8, 32))]  # fmt: skip
    jobs, left_out = SweepFolder(tmp_path).usable_jobs(rows)
    assert left_out == [] and [j.job for j in jobs] == [0, 1, 2]
    assert [[r["train/loss"] for r in j.history] for j in jobs] == [[0.5, 0.25], [0.125, 0.0625], [1 / 32, 1 / 64]]
    assert [j.last("val/loss") for j in jobs] == [0.45, 0.9 / 8, 0.9 / 32]
    write_job(tmp_path, 1, "model.net.hidden=[8]", history([7.0, 6.0], [5.0, 4.0]))  # job 1's history changes
    jobs, _ = SweepFolder(tmp_path).usable_jobs(rows)
    assert [r["train/loss"] for r in jobs[1].history] == [7.0, 6.0] and jobs[1].last("val/loss") == 4.0
    written, problems = SweepFolder(tmp_path).write_figures(rows)
    assert problems == [] and [p.name for p in written] == ["overlay.png", "complexity.png"]


def test_a_failed_job_or_one_without_history_is_left_out_and_named(tmp_path):
    rows = [
        write_job(tmp_path, 0, "a=1", history([1.0, 0.5], [1.0, 0.6])),
        write_job(tmp_path, 1, "a=2", None, status="failed"),
        write_job(tmp_path, 2, "a=3", None),
        write_job(tmp_path, 3, "a=4", history([1.0, 0.4], [1.0, 0.7])),
    ]
    jobs, left_out = SweepFolder(tmp_path).usable_jobs(rows)
    assert [j.job for j in jobs] == [0, 3]
    assert left_out == ["job 1 (a=2): failed", "job 2 (a=3): no history"]
    written, problems = SweepFolder(tmp_path).write_figures(rows)
    assert [p.name for p in written] == ["overlay.png"] and problems == []  # 2 usable jobs: no complexity graph
    assert SweepFolder(tmp_path).write_figures(rows[:3]) == ([], [])  # one usable job: nothing to compare


def test_a_multirun_draws_the_overlay_and_the_complexity_graph(tmp_path):
    proc = script("train", "--multirun", *FAST, "model.net.hidden=[2],[8],[32]", f"hydra.sweep.dir={tmp_path}")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert [r["status"] for r in results(tmp_path)] == ["ok", "ok", "ok"]
    assert (tmp_path / "overlay.png").stat().st_size > 10_000 and (tmp_path / "complexity.png").is_file()
    assert "figures: overlay.png, complexity.png (" in proc.stdout and not (tmp_path / "weights.png").exists()


def test_a_failing_job_leaves_the_results_and_the_figure_of_the_others(tmp_path):
    proc = script("train", "--multirun", *FAST, "data.batch_size=8,0,16", f"hydra.sweep.dir={tmp_path}")
    assert proc.returncode == 1  # the failed job still fails the multirun
    assert [r["status"] for r in results(tmp_path)] == ["ok", "failed", "ok"]
    assert "figures: overlay.png (" in proc.stdout and (tmp_path / "overlay.png").is_file()


def test_a_figure_that_cannot_be_drawn_is_named_and_the_results_stay(tmp_path, monkeypatch, capsys):
    from omegaconf import OmegaConf

    from zoo import outputs
    from zoo.search import SweepResults

    for j, lr in enumerate(("0.1", "0.01")):
        write_job(tmp_path, j, f"optimizer.lr={lr}", history([1.0, 0.5], [1.0, 0.6]))

    def broken(*args, **kwargs):
        raise ValueError("no axes today\nsecond line")

    monkeypatch.setattr(outputs, "plot_overlay", broken)
    SweepResults().on_multirun_end(OmegaConf.create({"hydra": {"sweep": {"dir": str(tmp_path)}}}))
    out = capsys.readouterr().out
    assert "figures: overlay.png not drawn: ValueError: no axes today\n" in out
    assert len(results(tmp_path)) == 2 and not (tmp_path / "overlay.png").exists()


@pytest.mark.slow
def test_an_l1_sweep_draws_each_jobs_weights_from_its_checkpoint(tmp_path):
    proc = script(
        "train", "--multirun", "logger=none", "data=digits", "model.net.hidden=[32]", "trainer.max_epochs=3",
        "model.l1=0,0.003", f"hydra.sweep.dir={tmp_path}",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert (tmp_path / "weights.png").is_file() and "weights.png" in proc.stdout
    rows = SweepFolder(tmp_path).jobs()
    jobs, _ = SweepFolder(tmp_path).usable_jobs(rows)
    weights = SweepFolder.job_weights(jobs)
    assert [w.size for w in weights] == [64 * 32 + 32 * 10] * 2  # matrices only, no biases
    plain, l1 = (float((np.abs(w) < 1e-3).mean()) for w in weights)
    assert l1 > plain  # L1 drives weights to zero
    assert abs(l1 - float(next(r for r in results(tmp_path) if "0.003" in r["overrides"])["test/sparsity"])) < 0.05


def write_gd_job(sweep: Path, job: int, batch: str, lr: float, steps: int, two_inputs: bool = False) -> dict:
    """A linear run's gradient-descent files: the path (``gd_path.csv``) and the loss surface (``loss_surface.npz``),
    in the format linear runs write them, on a quadratic bowl with its minimum at (0.9, 0.1)."""
    rng = np.random.default_rng(job)
    minimum = np.array([0.9, 0.1])
    point, points = np.array([0.0, 0.0]), []
    for _ in range(steps + 1):
        points.append(point.copy())
        point = point - lr * 2 * (point - minimum) + rng.normal(0, 0.02 if batch == "1" else 0.0, 2)
    axes = ("w1", "w2") if two_inputs else ("w", "b")
    columns = ["step", "epoch", *(("w1", "w2", "b") if two_inputs else ("w", "b")), "loss"]
    run = sweep / str(job)
    run.mkdir(parents=True, exist_ok=True)
    with (run / "gd_path.csv").open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(columns)
        for step, p in enumerate(points):
            values = [p[0], p[1], 0.0] if two_inputs else [p[0], p[1]]
            writer.writerow([step, step // 10 + 1, *values, float(((p - minimum) ** 2).sum()) + 0.02])
    x, y = np.linspace(-0.5, 1.5, 41), np.linspace(-0.8, 1.0, 31)
    loss = (x[None, :] - minimum[0]) ** 2 + (y[:, None] - minimum[1]) ** 2 + 0.02
    np.savez(run / "loss_surface.npz", x=x, y=y, loss=loss, minimum=minimum, labels=np.array(axes))
    hist = history([1.0, 0.1], [1.1, 0.2])
    return write_job(
        sweep,
        job,
        f"experiment=ex02 data.batch_size={batch}",
        hist,
        config=f"data:\n  batch_size: {batch}\noptimizer:\n  lr: {lr}\n",
    )


@pytest.mark.parametrize("two_inputs", [False, True])
def test_gradient_descent_paths_of_linear_runs_share_one_loss_surface(tmp_path, monkeypatch, two_inputs):
    from zoo import outputs

    settings = [("1", 0.01, 3000), ("16", 0.1, 190), ("full", 0.1, 30)]
    rows = [write_gd_job(tmp_path, j, *setting, two_inputs) for j, setting in enumerate(settings)]
    drawn = {}

    def spy(surface, paths, labels, path, **kwargs):
        drawn.update(surface=surface, paths=paths, labels=labels, note=kwargs.get("note"))
        return real(surface, paths, labels, path, **kwargs)

    real = outputs.plot_gd_paths
    monkeypatch.setattr(outputs, "plot_gd_paths", spy)
    written, problems = SweepFolder(tmp_path).write_figures(rows)
    assert problems == [] and "gd_paths.png" in [p.name for p in written]
    assert drawn["labels"] == ["batch 1, lr 0.01", "batch 16, lr 0.1", "batch full, lr 0.1"]
    assert [len(p) for p in drawn["paths"]] == [3001, 191, 31]  # every step read; drawing thins them
    first = np.loadtxt(tmp_path / "0" / "gd_path.csv", delimiter=",", skiprows=1)
    assert np.allclose(drawn["paths"][0], first[:, 2:4])  # (w, b) or (w1, w2): the surface's axes
    assert list(drawn["surface"]["labels"]) == (["w1", "w2"] if two_inputs else ["w", "b"])
    thin = subsample(drawn["paths"][0])
    assert len(thin) <= 500 and (thin[0] == drawn["paths"][0][0]).all() and (thin[-1] == drawn["paths"][0][-1]).all()
    assert drawn["note"] == "" and (tmp_path / "gd_paths.png").stat().st_size > 10_000


def test_gradient_descent_paths_leave_out_a_job_without_the_files(tmp_path):
    rows = [write_gd_job(tmp_path, 0, "1", 0.01, 100), write_gd_job(tmp_path, 1, "full", 0.1, 30)]
    rows.append(write_job(tmp_path, 2, "experiment=ex02 data.batch_size=16", history([1.0, 0.1], [1.1, 0.2])))
    rows.append(write_job(tmp_path, 3, "experiment=ex02 data.batch_size=4", None, status="failed"))
    written, problems = SweepFolder(tmp_path).write_figures(rows)
    assert problems == [] and [p.name for p in written] == ["overlay.png", "gd_paths.png"]
    rows[1]["run_dir"] = str(tmp_path / "nowhere")  # one job with files left: no paths figure
    assert [p.name for p in SweepFolder(tmp_path).write_figures(rows)[0]] == ["overlay.png"]


@pytest.mark.slow
@pytest.mark.parametrize(
    "experiment, figure, jobs",
    [
        ("intro_exercicio02_minibatch_sgd", "gd_paths.png", 3),
        ("intro_exercicio08_dropout_batchnorm", "overlay.png", 4),
        ("model_complexity", "complexity.png", 5),
        ("l1_vs_l2", "weights.png", 4),
    ],
)
def test_the_course_comparisons_draw_their_figure_as_multiruns(tmp_path, experiment, figure, jobs):
    """Each course experiment that compares things is a multirun over what it compares, as its header says:
    its jobs all finish and the sweep folder gets the figure that draws them together."""
    proc = script("train", f"experiment={experiment}", "--multirun", "debug=limit", "trainer.max_epochs=2",
                  f"hydra.sweep.dir={tmp_path}")  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert [r["status"] for r in results(tmp_path)] == ["ok"] * jobs
    assert (tmp_path / figure).stat().st_size > 10_000 and figure in proc.stdout
