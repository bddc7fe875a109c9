"""Every conf/experiment/*.yaml runs, shortened (one epoch of a few batches): a recipe that no longer composes or
trains fails here. Experiments that need the user's files get small files the test writes in the real format
(EXTRA below); one that needs a file and has no entry fails, so none is skipped silently."""

from __future__ import annotations

import csv
import random
import re
import string
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from tests.conftest import CONF
from tests.test_text import write_sarcasm

SHORT = ("debug=limit", "trainer.max_epochs=1", "cv.folds=null")


def write_csv(path: Path, header: list[str], rows: list[list[object]]) -> Path:
    with path.open("w", newline="") as fh:
        csv.writer(fh).writerows([header, *rows])
    return path


def mushrooms(tmp: Path) -> list[str]:
    """Kaggle's mushrooms.csv: a letter per attribute, class e(dible) or p(oisonous)."""
    rng = random.Random(0)
    header = ["class", "cap-shape", "cap-surface", "cap-color", "bruises", "odor", "gill-size", "habitat"]
    rows = [[c, rng.choice("bxfks"), rng.choice("fygs"), rng.choice("nbcgw"), rng.choice("tf"),
             "a" if c == "e" else "f", rng.choice("bn"), rng.choice("glmpud")] for c in "ep" * 40]  # fmt: skip
    return [f"data.path={write_csv(tmp / 'mushrooms.csv', header, rows)}"]


def titanic(tmp: Path) -> list[str]:
    """Kaggle's titanic train.csv, with its missing ages and cabins."""
    rng = random.Random(0)
    header = ["PassengerId", "Survived", "Pclass", "Name", "Sex", "Age", "SibSp", "Parch", "Ticket", "Fare", "Cabin",
              "Embarked"]  # fmt: skip
    rows = [[i, i % 2, rng.choice([1, 2, 3]), f"Doe, Mr. John {i}", rng.choice(["male", "female"]),
             rng.choice(["", 22, 38.5]), rng.randint(0, 3), rng.randint(0, 2), f"A/5 {i}", round(rng.uniform(5, 90), 2),
             rng.choice(["", "C85"]), rng.choice(["S", "C", "Q"])] for i in range(80)]  # fmt: skip
    return [f"data.path={write_csv(tmp / 'train.csv', header, rows)}"]


def spotify(tmp: Path) -> list[str]:
    """Kaggle's Spotify Song Attributes data.csv (an unnamed index column, 13 features, target, title, artist)."""
    rng = random.Random(0)
    features = ["acousticness", "danceability", "duration_ms", "energy", "instrumentalness", "key", "liveness",
                "loudness", "mode", "speechiness", "tempo", "time_signature", "valence"]  # fmt: skip
    rows = [[i, *(round(rng.random(), 3) for _ in features), i % 2, f"Song {i}", f"Artist {i % 7}"] for i in range(80)]
    return [f"data.path={write_csv(tmp / 'data.csv', ['', *features, 'target', 'song_title', 'artist'], rows)}"]


def multiclass(tmp: Path) -> list[str]:
    rng = random.Random(0)
    rows = [
        [round(rng.gauss(i % 3, 1), 3), round(rng.gauss(0, 1), 3), rng.choice("xyz"), f"c{i % 3}"] for i in range(90)
    ]
    return [f"data.path={write_csv(tmp / 'classes.csv', ['a', 'b', 'kind', 'label'], rows)}", "data.target=label"]


def pretrained(tmp: Path) -> list[str]:
    """transfer_frozen needs a backbone pretrained by transfer_pretrain: run that, shortened, first."""
    from tests.conftest import compose
    from zoo.run import train

    cfg = compose(["experiment=transfer_pretrain", *SHORT], tmp, folder="pretrain")
    train(cfg)
    return [f"model.weights={Path(cfg.paths.output_dir) / 'pretrained'}"]


def descriptions(tmp: Path) -> list[str]:
    """fetch_data.py debian_descriptions' CSV: a package's one-line description and its section."""
    rows = [[f"{word} {kind} tool {i}", kind] for i in range(40) for word, kind in (("play", "games"), ("mail", "net"))]
    return [f"data.path={write_csv(tmp / 'debian_descriptions.csv', ['text', 'label'], rows)}"]


def fashion(tmp: Path) -> list[str]:
    """Fashion-MNIST's four IDX files, gzipped as Debian's package ships them (real MNIST pixels in them here)."""
    from tests.formats import real_digits, write_idx

    for prefix, n, offset in (("train", 300, 0), ("t10k", 60, 300)):
        write_idx(tmp / "fashion" / "FashionMNIST" / "raw", prefix, *real_digits(n, offset), compress=True)
    return [f"paths.data_dir={tmp / 'fashion'}", "data.download=false"]


EXTRA: dict[str, Callable[[Path], list[str]]] = {
    "fashion_fast": fashion,
    "redes_demo_titanic_elm": titanic,
    "redes_exercicio04_mushroom_elm": mushrooms,
    "redes_exercicio05_spotify_mlp": spotify,
    "redes_exercicio05_1_multiclass_mlp": multiclass,
    "transfer_frozen": pretrained,
    "pretrained_text": descriptions,
    "intro_exercicio10_sarcasm": lambda tmp: [f"data.path={write_sarcasm(tmp / 'Sarcasm_Headlines_Dataset.json')}"],
    "intro_exercicio07_cifar_conv": lambda tmp: [f"paths.data_dir={_cifar(tmp)}", "data.download=false"],
}


def _cifar(tmp: Path) -> Path:
    from tests.formats import write_cifar

    return write_cifar(tmp / "cifar")


ALIAS = "# Alias: the old name of experiment="
ALIASES = {p.stem: p.read_text().split(ALIAS)[1].split(",")[0]
           for p in (CONF / "experiment").glob("*.yaml") if ALIAS in p.read_text()}  # fmt: skip
EXPERIMENTS = sorted(p.stem for p in (CONF / "experiment").glob("*.yaml") if p.stem not in ALIASES)


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_every_experiment_runs_shortened(train_run, tmp_path, name):
    extra = EXTRA[name](tmp_path) if name in EXTRA else []
    metrics, out = train_run(f"experiment={name}", *SHORT, *extra, folder=name)
    assert metrics and (out / "metrics.json").is_file()
    model = yaml.safe_load((out / "config.yaml").read_text())["model"]["name"]
    if (out / "tokenizer.json").is_file() and model != "transformer":  # text nets that learn word vectors draw them
        assert (out / "word_embeddings.png").is_file()
    if summary_of(name):  # what the run showed, with its own numbers (cv_digits' folds are off in SHORT)
        text = (out / "summary.md").read_text()
        assert "n/a" not in text or name == "cv_digits", text


def summary_of(name: str) -> str:
    return yaml.safe_load((CONF / "experiment" / f"{name}.yaml").read_text()).get("summary") or ""


# What an experiment's summary may name (zoo.run.summary_values): metrics, the first and last epoch's values, counts,
# what ended training, and a linear fit's facts (zoo.tasks.regression).
SUMMARY_NAMES = r"(test|cv)_\w+|(first|final)_(train|val)_\w+|epochs|steps|steps_per_epoch|seconds|best_epoch|" + (
    r"ended_by|learnt|tested|least_squares|w|b|gap|first_loss|last_loss"
)


def test_every_summary_names_what_a_run_produces():
    with_summary = [name for name in EXPERIMENTS if summary_of(name)]
    assert len(with_summary) >= 25
    for name in with_summary:
        fields = [field for _, field, _, _ in string.Formatter().parse(summary_of(name)) if field]
        assert fields and all(re.fullmatch(SUMMARY_NAMES, f) for f in fields), f"{name}.yaml: {fields}"


def test_every_experiment_says_what_it_teaches_and_what_to_expect():
    for name in EXPERIMENTS:
        header = (CONF / "experiment" / f"{name}.yaml").read_text().split("defaults:")[0].lower()
        assert "expect" in header or "measured" in header, f"{name}.yaml: state the result to expect"


@pytest.mark.parametrize("old, new", sorted(ALIASES.items()))
def test_an_old_experiment_name_composes_what_the_new_one_does(tmp_path, old, new):
    from omegaconf import OmegaConf

    from tests.conftest import compose

    def composed(name: str) -> dict:
        cfg = OmegaConf.to_container(compose([f"experiment={name}"], tmp_path), resolve=False)
        cfg.pop("hydra")
        return cfg

    assert composed(old) == composed(new) and composed(new)["name"] == new  # runs land in logs/<new name>/


def test_the_course_experiments_follow_one_naming_scheme():
    course = [name for name in EXPERIMENTS if name.startswith(("intro_", "redes_"))]
    scheme = r"(intro_(exemplo|exercicio)\d\d|redes_(exercicio\d\d(_\d)?|demo))_[a-z0-9_]+"
    assert len(course) == len(ALIASES) and all(re.fullmatch(scheme, name) for name in course)
