"""Side by side on one data set and one split (the "comparativo MLP, ELM e outros classificadores" of Redes Neurais e
Deep Learning): zoo's MLP, ELM and logistic/linear regression against scikit-learn's logistic regression (ridge on a
regression) and RBF-SVM (C, and gamma, grid-searched), random forest and k-NN, all fitted on the data module's own
training tensors and scored on its test split.

On text the same table puts zoo's text models (embedding + average pooling, the LSTM) beside the classical
baselines a practitioner tries first: TF-IDF of words and word pairs, then logistic regression or a linear SVM
(C grid-searched), fitted on the same training texts and scored on the same test texts."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from zoo.config import build_datamodule, declared
from zoo.errors import ZooError
from zoo.outputs import RunFolder
from zoo.plots import plot_comparison
from zoo.report import Figure, Table
from zoo.run import build_task, prepare_process
from zoo.spec import CLASSIFICATION, REGRESSION, TABLE, TEXT

ZOO_MODELS = ("mlp", "elm", "logistic", "text_avgpool", "rnn")
SKLEARN_MODELS = ("logreg", "svm", "random_forest", "knn")
TEXT_BASELINES = ("tfidf_logreg", "tfidf_svm")  # scikit-learn on the raw texts
TEXT_MODELS = ("text_avgpool", "rnn", *TEXT_BASELINES)
DEFAULTS = {TABLE: ["mlp", "elm", "logistic", *SKLEARN_MODELS], TEXT: list(TEXT_MODELS)}  # models=auto


def compare(cfg: DictConfig) -> list[dict[str, Any]]:
    """Fit every model in ``cfg.models`` (``auto``: the table models, or the text ones on text data); write
    ``comparison.csv``, ``comparison.md`` and ``comparison.png``."""
    known = ZOO_MODELS + SKLEARN_MODELS + TEXT_BASELINES
    asked = list(cfg.models) if cfg.models != "auto" else []
    unknown = [m for m in asked if m not in known]
    if unknown:
        raise ZooError(f"models: {unknown} unknown; choose from {', '.join(known)} (or auto)")
    out = RunFolder(cfg.paths.output_dir)
    if (out.path / "comparison.csv").exists():
        raise ZooError(f"'{out.path}' already holds a comparison; nothing was overwritten. Pick another hydra.run.dir")
    prepare_process(cfg.seed)
    data = build_datamodule(cfg.data, OmegaConf.create({"input": TABLE}))
    spec = data.spec
    if spec.task not in (CLASSIFICATION, REGRESSION):
        raise ZooError(f"data={spec.name} is a {spec.task} data set; compare takes classification or regression data")
    kind = TEXT if spec.is_text else TABLE
    models = asked or DEFAULTS[kind]
    misfits = [m for m in models if (m in TEXT_MODELS) != spec.is_text]
    if misfits:
        what = "text" if spec.is_text else f"{'image' if spec.is_image else 'table'} data"
        raise ZooError(
            f"models: {', '.join(misfits)} cannot read data={spec.name} ({what}); choose from "
            f"{', '.join(DEFAULTS[kind])}, or models=auto"
        )
    if any(name in SKLEARN_MODELS for name in models):  # before any fit: they take the splits as arrays
        data.require_memory(f"compare (with {', '.join(SKLEARN_MODELS)})")
    metric = "acc" if spec.task == CLASSIFICATION else "r2"
    rows = []
    for name in models:
        print(f"compare: fitting {name} on {spec.name}")
        fit = fit_zoo if name in ZOO_MODELS else fit_text if name in TEXT_BASELINES else fit_sklearn
        score, fit_s, predict_s = fit(name, cfg, data, out.path)
        rows.append({"model": name, f"test/{metric}": score, "fit_s": fit_s, "predict_s": predict_s})
    write_table(rows, out, f"test/{metric}", spec.name)
    return rows


def fit_zoo(name: str, cfg: DictConfig, data: Any, out: Path) -> tuple[float, float, float]:
    """Train a zoo model through the Lightning Trainer, as ``scripts/train.py`` would (no checkpoints or loggers);
    returns (test score, fit seconds, predict seconds)."""
    import lightning as L

    model_name = "linear" if name == "logistic" and data.spec.task == REGRESSION else name
    model = declared("model", model_name)
    model.merge_with(cfg.get("zoo_models", {}).get(name) or {})  # before create(), which copies it
    run = OmegaConf.create(
        {"model": model, "seed": cfg.seed, "optimizer": cfg.optimizer, "scheduler": None, "steps_per_execution": "auto"}
    )  # the fast path, as train.py runs by default
    prepare_process(cfg.seed)
    task = build_task(run, data.spec)
    trainer = L.Trainer(
        max_epochs=1 if name == "elm" else cfg.epochs, logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, default_root_dir=str(out / name),
        num_sanity_val_steps=0,
        limit_val_batches=0,  # no checkpoint or early stopping to choose here: the fit is training alone, as sklearn's
        accelerator="cpu" if cfg.cpu else "auto", devices=1,
    )  # fmt: skip
    start = time.perf_counter()
    trainer.fit(task, datamodule=data)
    fit_s = time.perf_counter() - start
    start = time.perf_counter()
    result = trainer.test(task, datamodule=data, verbose=False)[0]
    predict_s = time.perf_counter() - start
    key = "test/acc" if data.spec.task == CLASSIFICATION else "test/r2"
    return float(result[key]), fit_s, predict_s


def fit_sklearn(name: str, cfg: DictConfig, data: Any, out: Path) -> tuple[float, float, float]:
    """Fit a scikit-learn baseline on train+val; returns (test score, fit seconds, predict seconds)."""
    from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor
    from sklearn.svm import SVC, SVR

    (xt, yt), (xv, yv), (xs, ys) = (_table(data, s) for s in ("train", "val", "test"))
    import numpy as np

    x, y = np.concatenate([xt, xv]), np.concatenate([yt, yv])  # the zoo models use val only to pick checkpoints
    classify = data.spec.task == CLASSIFICATION
    c = list(cfg.logreg_c_grid)
    linear = (LogisticRegression(max_iter=5000), {"C": c}) if classify else (Ridge(), {"alpha": [1 / v for v in c]})
    searched = {  # the linear baseline fitted to convergence and the RBF-SVM, their settings grid-searched
        "logreg": linear,
        "svm": (SVC() if classify else SVR(), OmegaConf.to_container(cfg.svm_grid)),
    }
    if name in searched:
        model = grid_searched(*searched[name])
    elif name == "random_forest":
        kind = RandomForestClassifier if classify else RandomForestRegressor
        model = kind(n_estimators=cfg.forest_trees, random_state=cfg.seed, n_jobs=1)
    else:
        model = (KNeighborsClassifier if classify else KNeighborsRegressor)(n_neighbors=cfg.knn_neighbors)
    start = time.perf_counter()
    model.fit(x, y)
    fit_s = time.perf_counter() - start
    start = time.perf_counter()
    score = model.score(xs, ys)  # accuracy for classifiers, R^2 for regressors
    predict_s = time.perf_counter() - start
    return float(score), fit_s, predict_s


def fit_text(name: str, cfg: DictConfig, data: Any, out: Path) -> tuple[float, float, float]:
    """TF-IDF of words and word pairs (sublinear term frequencies, the tokens scikit-learn finds), then logistic
    regression or a linear SVM with C grid-searched by 3-fold cross-validation; fitted on the raw training and
    validation texts, scored on the test texts. Returns (test accuracy, fit seconds, predict seconds)."""
    import numpy as np
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.svm import LinearSVC

    texts = data.texts["train"] + data.texts["val"]
    labels = np.concatenate([data.splits["train"][1].numpy(), data.splits["val"][1].numpy()])
    classifier = LogisticRegression(max_iter=2000) if name == "tfidf_logreg" else LinearSVC()
    pipeline = make_pipeline(TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True), classifier)
    grid = {f"{type(classifier).__name__.lower()}__C": list(cfg.text_c_grid)}
    model = grid_searched(pipeline, grid)
    start = time.perf_counter()
    model.fit(texts, labels)
    fit_s = time.perf_counter() - start
    start = time.perf_counter()
    score = model.score(data.texts["test"], data.splits["test"][1].numpy())
    return float(score), fit_s, time.perf_counter() - start


def grid_searched(estimator: Any, grid: dict[str, Any]) -> Any:
    """``estimator`` with the settings in ``grid`` chosen by 3-fold cross-validation on what it is fitted on."""
    from sklearn.model_selection import GridSearchCV

    return GridSearchCV(estimator, grid, cv=3, n_jobs=1)


def _table(data: Any, split: str) -> tuple[Any, Any]:
    """A split as scikit-learn sees it: images flattened and standardised per pixel as the zoo task sees them."""
    import torch

    x, y = data.splits[split]
    if data.spec.is_image:
        mean = torch.tensor(data.spec.pixel_mean).reshape(1, -1)
        std = torch.tensor(data.spec.pixel_std).reshape(1, -1)
        x = x.float().flatten(1) / 255
        x = (x - mean) / std if mean.shape[1] == x.shape[1] else x
    return x.float().numpy(), y.numpy()


def write_table(rows: list[dict[str, Any]], out: RunFolder, metric: str, data_name: str) -> None:
    """``comparison.csv``, ``comparison.md`` (printed too) and ``comparison.png`` (metric and fit time bars)."""
    out.write_table("comparison", Table(list(rows[0]), [list(r.values()) for r in rows]))
    lines = [f"| model | {metric} | fit s | predict s |", "|---|---|---|---|"]
    lines += [f"| {r['model']} | {r[metric]:.4f} | {r['fit_s']:.3f} | {r['predict_s']:.4f} |" for r in rows]
    table = "\n".join(lines) + "\n"
    out.write_text("comparison.md", f"{data_name}, one split, test split scores\n\n" + table)
    print(table + f"run folder: {out.path}")
    out.write_figure("comparison", Figure(plot_comparison, (rows, metric, data_name)))
