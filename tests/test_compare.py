"""scripts/compare.py: zoo models and scikit-learn baselines on one split; a table and a bar plot."""

from __future__ import annotations

import csv

from tests.test_cli import script


def test_compare_writes_a_table_and_a_plot_for_every_model(tmp_path):
    proc = script("compare", "data=iris", "epochs=3", "cpu=true", f"hydra.run.dir={tmp_path}")
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = list(csv.DictReader((tmp_path / "comparison.csv").open()))
    assert [r["model"] for r in rows] == ["mlp", "elm", "logistic", "logreg", "svm", "random_forest", "knn"]
    assert all(0 <= float(r["test/acc"]) <= 1 and float(r["fit_s"]) >= 0 for r in rows)
    assert min(float(r["test/acc"]) for r in rows if r["model"] in ("logreg", "svm", "knn", "elm")) > 0.85
    assert "| svm |" in proc.stdout and (tmp_path / "comparison.md").is_file()
    assert (tmp_path / "comparison.png").stat().st_size > 10_000


def test_compare_on_regression_data_scores_r2(tmp_path):
    models = "models=[elm,logistic,logreg,knn]"
    proc = script("compare", "data=boston", "epochs=2", "cpu=true", models, f"hydra.run.dir={tmp_path}")
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = list(csv.DictReader((tmp_path / "comparison.csv").open()))
    assert [r["model"] for r in rows] == ["elm", "logistic", "logreg", "knn"] and "test/r2" in rows[0]
    assert float(rows[2]["test/r2"]) > 0.5  # ridge regression, alpha grid-searched (0.58 on this split)


def test_an_unknown_model_is_one_line(tmp_path):
    proc = script("compare", "models=[mlp,xgboost]", f"hydra.run.dir={tmp_path}")
    assert proc.returncode == 2
    assert (
        "error: models: ['xgboost'] unknown; choose from mlp, elm, logistic, text_avgpool, rnn, logreg, svm, "
        "random_forest, knn, tfidf_logreg, tfidf_svm (or auto)"
    ) in proc.stderr


def test_text_data_compares_zoo_text_models_with_tfidf_baselines(tmp_path):
    proc = script("compare", "data=text_synth", "data.count=600", "epochs=2", "cpu=true", f"hydra.run.dir={tmp_path}")
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = {r["model"]: float(r["test/acc"]) for r in csv.DictReader((tmp_path / "comparison.csv").open())}
    assert list(rows) == ["text_avgpool", "rnn", "tfidf_logreg", "tfidf_svm"]  # models=auto on text
    assert rows["tfidf_svm"] > 0.9 and rows["tfidf_logreg"] > 0.9  # word pairs see "not good"


def test_a_model_that_cannot_read_the_data_is_one_line(tmp_path):
    proc = script("compare", "data=iris", "models=[mlp,tfidf_svm]", f"hydra.run.dir={tmp_path}")
    assert proc.returncode == 2
    refusal = "error: models: tfidf_svm cannot read data=iris (table data); choose from mlp, elm, logistic, logreg, svm"
    assert refusal in proc.stderr
    proc = script("compare", "data=text_synth", "models=[svm]", f"hydra.run.dir={tmp_path / 'text'}")
    assert (
        proc.returncode == 2
        and "error: models: svm cannot read data=text_synth (text); choose from text_avgpool" in (proc.stderr)
    )


def test_per_model_overrides_reach_the_zoo_model(tmp_path):
    proc = script("compare", "data=iris", "models=[elm]", "+zoo_models.elm.ridge=-1", f"hydra.run.dir={tmp_path}")
    assert proc.returncode == 2 and "error: model.ridge=-1 must be >= 0" in proc.stderr  # not silently dropped
