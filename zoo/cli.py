"""What every script does before Hydra runs: ``--help`` at once (before Hydra is even imported: its own help composes
every group), and the command line's overrides checked, so a mistake is one ``error:`` line and exit 2."""

from __future__ import annotations

import atexit
import contextlib
import difflib
import gc
import itertools
import os
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NoReturn

from zoo.config import (
    AUTO_SWITCHES,
    CONF_DIR,
    Required,
    check_switch,
    group_options,
    header,
    leaves,
    override_key,
    recipe_for,
    required_values,
    with_recipe,
)
from zoo.console import quiet
from zoo.errors import ZooError, report_user_errors
from zoo.internals import expand_sweep

HIDDEN_GROUPS = {"hydra", "base", "recipes"}  # recipes: conf/recipes/, what a bare model=X data=Y adds

EXAMPLES = """\
examples:
  python scripts/train.py                                         # MLP on digits, offline, < 1 minute
  python scripts/train.py model=mlp data=boston optimizer=adam trainer.max_epochs=50
  python scripts/train.py model=logistic data=boston data.target=above_median
  python scripts/train.py data=csv data.path=titanic.csv data.target=Survived data.drop=[Name,Ticket]
  python scripts/train.py model.net.hidden=[64,32] model.net.dropout=0.2 model.l2=1e-4 seed=1
  python scripts/train.py model.net.hidden=[hagan]                  # a width from a sizing rule of the slides
  python scripts/train.py data.batch_size=full optimizer=sgd        # full-batch gradient descent
  python scripts/train.py model=cnn data=digits                     # or lenet5, resnet; mnist5k, cifar10, ...
  python scripts/train.py experiment=lenet5_mnist5k                 # a recipe from conf/experiment/
  python scripts/train.py model=timm model.backbone=resnet18 model.pretrained=true data=cifar10
  python scripts/train.py model=timm model.weights=DIR model.finetune.mode=frozen data=images data.path=PICS
  python scripts/train.py experiment=unet_shapes                    # segmentation; data=masks data.path=DIR
  python scripts/train.py experiment=detector_boxes                 # detection; data=yolo data.path=DIR
  python scripts/train.py experiment=triplet_digits                 # triplet-loss embeddings
  python scripts/train.py experiment=rnn_vs_avgpool                 # text: an LSTM; data=sarcasm data.path=FILE
  python scripts/train.py model=elm model.net.hidden=[1000]         # Extreme Learning Machine, solved in one pass
  python scripts/train.py cv.folds=5                                # 5-fold cross-validation: mean ± std
  python scripts/train.py callbacks.early_stopping.patience=5       # early stopping, best weights restored
  python scripts/train.py --multirun hparams_search=optuna          # or grid, genetic: results.csv, best.yaml
  python scripts/compare.py data=digits                             # MLP, ELM, logistic vs SVM, forest, k-NN
  python scripts/train.py ckpt_path=last                            # resume the newest run of this experiment
  python scripts/train.py debug=fdr                                 # fdr | overfit | limit | profiler
  python scripts/train.py cuda_graphs=false compile=true           # fast-path switches (docs: benchmarks)
  python scripts/train.py --multirun model=linear,mlp data=boston   # one run folder and W&B run per job
  python scripts/eval.py ckpt_path=logs/mlp-digits/runs/<time>/checkpoints/last.ckpt

--cfg job prints the composed config; hydra.run.dir=DIR picks the run folder; HYDRA_FULL_ERROR=1 shows tracebacks.
"""


def exit_with_help_if_asked(config_name: str) -> None:
    """Print the config groups (default marked with *) and examples, then exit, when -h/--help is given."""
    if not {"-h", "--help"} & set(sys.argv[1:]):
        return
    print(help_text(config_name))
    sys.exit(0)


def script_defaults(config_name: str) -> dict[str, Any]:
    """``{group: option}`` of ``conf/<config_name>.yaml``'s defaults list (None for a group it leaves unset)."""
    import yaml

    primary = yaml.safe_load((CONF_DIR / f"{config_name}.yaml").read_text()) or {}
    return {k: v for d in primary.get("defaults", []) if isinstance(d, dict) for k, v in d.items()}


def help_text(config_name: str) -> str:
    text = (CONF_DIR / f"{config_name}.yaml").read_text()
    defaults = script_defaults(config_name)
    lines = [
        f"zoo {config_name}: from linear regression to CNNs and transfer learning, with Lightning, Hydra and W&B.",
        "",
        f"usage: python scripts/{config_name}.py [GROUP=OPTION ...] [KEY=VALUE ...] [--multirun] [--cfg job]",
        "",
        "config groups (GROUP=OPTION, * = default):",
    ]
    for group in groups() if config_name == "train" else [g for g in groups() if g in defaults]:  # the script's own
        marked = [f"*{o}" if o == defaults.get(group) else o for o in group_options(group, [CONF_DIR], aliases=False)]
        lines.append(f"  {group:<11} {', '.join(marked)}")
    if config_name == "train":
        return "\n".join(lines) + "\n\n" + EXAMPLES
    header = itertools.takewhile(lambda line: line.startswith("#"), text.splitlines())  # what the script does
    return "\n".join([*lines, "", *(line.removeprefix("#").strip() for line in header)])


def groups() -> list[str]:
    """The config groups a user picks from (``conf/hydra`` and ``conf/base`` are zoo's own)."""
    return sorted(p.name for p in CONF_DIR.iterdir() if p.is_dir() and p.name not in HIDDEN_GROUPS)


SCRIPTS = ("train", "eval", "export", "predict", "compare")  # each reads conf/<script>.yaml


def config_reference() -> str:
    """The documentation's configuration reference, written from ``conf/`` itself (as ``--help`` is): each script's
    own keys, then every group's options with their opening comments and their YAML, then the recipes."""
    from omegaconf import OmegaConf

    out = ["## Each script's own keys", ""]
    for script in SCRIPTS:
        own = (CONF_DIR / f"{script}.yaml").read_text().strip()
        out += [f"### `scripts/{script}.py`", "", "```yaml", own, "```", ""]
    primary = (CONF_DIR / "train.yaml").read_text()
    out += ["## Config groups", ""]
    for group in groups():
        out += [f"### `{group}`", "", "| option | what it is |", "|---|---|"]
        for option in group_options(group, [CONF_DIR], aliases=False):
            default = " (default)" if f"  - {group}: {option}\n" in primary else ""
            about = (header(CONF_DIR / group / f"{option}.yaml") or "&nbsp;").replace("|", "\\|")
            out.append(f"| `{group}={option}`{default} | {about} |")
        out.append("")
        for option in group_options(group, [CONF_DIR], aliases=False):
            text = (CONF_DIR / group / f"{option}.yaml").read_text().strip()
            indented = [f"    {line}".rstrip() for line in text.splitlines()]
            out += [f'??? note "{group}={option}"', "", "    ```yaml", *indented, "    ```", ""]
        old = sorted(set(group_options(group, [CONF_DIR])) - set(group_options(group, [CONF_DIR], aliases=False)))
        if old:
            out += [f"Old names that still work for one more release: {', '.join(f'`{o}`' for o in old)}.", ""]
    out += ["## Recipes", "", "What a bare `model=X data=Y` adds (`recipe=auto`); what the command line gives wins, "
            "`recipe=none` leaves them out, an `experiment=` is a recipe of its own.", "",
            "| model+data | what it is | overrides |", "|---|---|---|"]  # fmt: skip
    for name in group_options("recipes", [CONF_DIR]):
        path = CONF_DIR / "recipes" / f"{name}.yaml"
        overrides = " ".join(f"`{o}`" for o in OmegaConf.load(path).overrides)
        about = header(path).replace("|", "\\|")
        out.append(f"| `{name}` | {about} | {overrides} |")
    return "\n".join(out)


def start(config_name: str) -> None:
    """A script's first line: answer ``--help``; put Hydra's flags before the overrides (Hydra's parser takes the
    overrides as one run of words), ``-v`` as ``verbose=true``; keep third-party noise off the screen unless
    verbose; refuse bad overrides in one line (exit 2) before Hydra starts. The garbage collector rests until
    the imports are in (:func:`collect_new_objects_only`)."""
    gc.disable()
    exit_with_help_if_asked(config_name)
    args = sys.argv[1:]
    given = [a for a in args if "=" in a and not a.startswith("-")]
    verbose = bool(VERBOSE & set(args))
    args = [template_spelling(a) for a in args if a not in VERBOSE] + (["++verbose=true"] if verbose else [])
    args = report_user_errors(dropped_groups, args, config_name)
    args = hydra_order(searched(args) if config_name == "train" else args)
    own = report_user_errors(check_config_flags, args, config_name)
    quiet(verbose or any(a.lstrip("+") == "verbose=true" for a in args))
    if config_name == "train" and own:
        args = report_user_errors(recipe_args, args)
    sys.argv[1:] = args
    # a bare training run (its recipe's overrides are tested) composes once; a primary config of the user's own
    # (-cp/-cn) is Hydra's to compose
    if own and (given or config_name != "train"):
        report_user_errors(check_overrides, config_name, args)


@contextlib.contextmanager
def collect_new_objects_only() -> Iterator[None]:
    """Around a script's work, once its imports are in: what is alive now (modules, the config: about a million
    objects once torch, Lightning and W&B are imported) is left out of garbage collection for good, and the
    collector runs as usual on what the block makes. Python's full collections walk every object they track: on a
    2-core CPU they take 0.8 s of a 4.5 s start during the imports, stall an epoch for 0.25 s during training,
    and 1 s at the interpreter's exit. A frozen object that becomes cyclic garbage later (a multirun job's Hydra
    config) waits for the exit."""
    gc.freeze()
    gc.enable()
    try:
        yield
    finally:
        gc.collect()  # the block's own garbage; the next job of a multirun freezes what is alive then


def exit_without_teardown(code: int = 0) -> NoReturn:
    """End a script whose work is done and saved, without the interpreter's teardown: what ``atexit`` holds runs
    (W&B's close, logging's flush, multiprocessing's reaping of its children), threads that would keep the process
    alive are joined and the standard streams flushed, as at a normal exit; then the process ends without freeing
    each of the modules and objects of torch, Lightning and W&B one by one, 0.15-0.26 s of the default run on a
    2-core CPU (mypy ends its runs the same way)."""
    for thread in threading.enumerate():
        if thread is not threading.main_thread() and not thread.daemon:
            thread.join()
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):  # a closed pipe: nothing left to flush to
            stream.flush()
    os._exit(code)


def searched(args: list[str]) -> list[str]:
    """The command line with ``--multirun`` added where it picks a search (``hparams_search=auto``): a search is
    many runs, whether or not the flag was typed."""
    picks = {a.split("=", 1)[1] for a in args if "=" in a and override_key(a) == "hparams_search"} - {"null", ""}
    if picks and not {"-m", "--multirun", *INSPECT_FLAGS} & set(args):
        return ["--multirun", *args]
    return args


def recipe_args(args: list[str]) -> list[str]:
    """The command line with the model+data recipe's overrides put before the user's (``zoo.config.with_recipe``),
    and a line saying which were added."""
    split = next((i for i, a in enumerate(args) if not a.startswith("-") and "=" in a), len(args))
    flags, overrides = args[:split], args[split:]
    overrides, recipe = with_recipe(overrides, _config_dirs(overrides))
    if recipe is not None and recipe.overrides and not INSPECT_FLAGS & set(flags):  # nothing left to say: no line
        print(recipe.line(), flush=True)
    return [*flags, *overrides]


VERBOSE = {"-v", "--verbose"}
INSPECT_FLAGS = {"-c", "--cfg", "-i", "--info"}  # Hydra prints the config or its sources: nothing runs
TEMPLATE_KEYS = {"model.optimizer.": "optimizer.", "model.scheduler.": "scheduler."}  # lightning-hydra-template's


def template_spelling(arg: str) -> str:
    """An override in lightning-hydra-template's spelling, in zoo's: the template nests the optimizer and the
    scheduler in the model (``model.optimizer.lr=0.01``), zoo has them as groups of their own (``optimizer.lr``)."""
    prefix = arg[: len(arg) - len(arg.lstrip("+~"))]
    for theirs, ours in TEMPLATE_KEYS.items():
        if arg[len(prefix) :].startswith(theirs):
            return prefix + ours + arg[len(prefix) + len(theirs) :]
    return arg


NEEDED_GROUPS = ("model", "data", "optimizer", "trainer", "paths", "hydra")  # a script that sets one needs it


def dropped_groups(args: list[str], config_name: str = "train") -> list[str]:
    """``group=null`` (as the config prints an unset group: ``scheduler: null``) in Hydra's spelling, ``~group``:
    the run goes without that group (Hydra itself stops on ``group=null`` with a traceback). Dropping a group the
    script needs (train's ``model=null``, ``~data``) is one line; eval's ``data=null`` is its default."""

    def drops(arg: str) -> bool:
        return arg.startswith("~") or (arg.endswith("=null") and not arg.startswith(("-", "+")))

    if not any(map(drops, args)):  # the usual command line: nothing to read
        return args
    dirs = _config_dirs([a for a in args if "=" in a and not a.startswith("-")])
    needed = {g for g, option in script_defaults(config_name).items() if g in NEEDED_GROUPS and option is not None}
    out = []
    for arg in args:
        key = arg.lstrip("~").split("=", 1)[0]
        if drops(arg) and _is_group(key, dirs):
            if key in needed:
                raise ZooError(f"{arg}: {key} cannot be left out; choose one of {', '.join(group_options(key, dirs))}")
            arg = f"~{key}"
        out.append(arg)
    return out


VALUED_FLAGS = {"-c", "--cfg", "-p", "--package", "-cp", "--config-path", "-cn", "--config-name", "-cd",
                "--config-dir", "--experimental-rerun", "-sc", "--shell-completion"}  # fmt: skip
INFO_CHOICES = {"all", "config", "defaults", "defaults-tree", "plugins", "searchpath"}


def hydra_order(args: list[str]) -> list[str]:
    """The command line with Hydra's flags (and their values) first, the overrides after them in their order."""
    flags, overrides, i = [], [], 0
    while i < len(args):
        arg = args[i]
        if not arg.startswith("-"):
            overrides.append(arg)
        else:
            flags.append(arg)
            takes = arg in VALUED_FLAGS or (
                arg in ("-i", "--info") and i + 1 < len(args) and args[i + 1] in INFO_CHOICES
            )
            if takes and i + 1 < len(args):
                i += 1
                flags.append(args[i])
        i += 1
    return flags + overrides


def check_config_flags(args: list[str], config_name: str) -> bool:
    """Refuse in one line a ``-cp``/``--config-path`` or ``-cd``/``--config-dir`` folder that does not exist and a
    ``-cn``/``--config-name`` with no such file in the primary folder (Hydra prints several lines and its search
    path); return whether the primary config is still the script's own ``conf/<config_name>.yaml``."""
    given: dict[str, str] = {}
    names = {"-cp": "-cp", "--config-path": "-cp", "-cn": "-cn", "--config-name": "-cn", "-cd": "-cd",
             "--config-dir": "-cd"}  # fmt: skip
    for i, arg in enumerate(args):
        flag, eq, value = arg.partition("=")
        if flag in names and (eq or i + 1 < len(args)):
            given[names[flag]] = value if eq else args[i + 1]
    if "-cd" in given and not Path(given["-cd"]).expanduser().is_dir():
        raise ZooError(f"-cd {given['-cd']}: no such folder; give a folder of configs to add to the search path")
    folder = CONF_DIR
    if given.get("-cp", "").startswith("pkg://"):
        return False  # a package's configs: Hydra finds them
    if "-cp" in given:  # relative to the scripts' folder, as Hydra reads it
        folder = (CONF_DIR.parent / "scripts" / Path(given["-cp"]).expanduser()).resolve()
        if not folder.is_dir():
            raise ZooError(
                f"-cp {given['-cp']}: no folder {folder}; give a folder of configs (absolute, or relative to scripts/)"
            )
    name = given.get("-cn", config_name).removesuffix(".yaml")
    if not (folder / f"{name}.yaml").is_file():
        options = sorted(p.stem for p in folder.glob("*.yaml"))
        choose = f"choose one of {', '.join(options)}" if options else "that folder holds no .yaml config"
        if "-cn" not in given:  # -cp alone: the script's own name, which that folder lacks
            raise ZooError(f"-cp {given['-cp']}: no {name}.yaml in {folder}; name its config with -cn NAME: {choose}")
        raise ZooError(f"-cn {name}: no {name}.yaml in {folder}; {choose}")
    return folder == CONF_DIR and name == config_name


def check_overrides(config_name: str, args: list[str]) -> None:
    """Compose ``conf/<config_name>.yaml`` with the command line's overrides (each combination of a ``--multirun``
    sweep) and raise a ZooError naming an unknown option or key (with the closest match) or a word for a number."""
    from hydra import compose, initialize_config_dir
    from hydra.errors import ConfigCompositionException, OverrideParseException

    overrides = [a for a in args if "=" in a and not a.startswith("-")]  # flags (--multirun, --cfg job) are Hydra's
    for override in overrides:  # not a positive count (a word too): one line before Hydra; zoo.sweeper checks configs
        key, value = override_key(override), override.split("=", 1)[1]
        if key == "hydra.sweeper.n_trials" and not (value.isdigit() and int(value) >= 1):
            raise ZooError(f"{override} is not valid; give a positive number of trials")
        if key in ("hydra.run.dir", "hydra.sweep.dir"):
            if not value.strip(" '\""):
                raise ZooError(f"{override} is empty; give a folder ({key}=runs/mine) or leave it out")
            if Path(value.strip("'\"")).is_file():
                raise ZooError(f"{override}: '{value}' is a file; give a folder ({key}=runs/mine)")
    try:
        combos = _combinations(overrides, multirun=bool({"-m", "--multirun"} & set(args)))
    except OverrideParseException as err:
        raise ZooError(f"cannot read the command line: {' '.join(str(err).split())}") from None
    dirs = _config_dirs(overrides)
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        if {"-m", "--multirun"} & set(args):
            _check_sweep_dir_free(config_name, combos[0])
        for combo in combos:
            _check_group_options(combo, dirs)
            try:
                cfg = compose(config_name, overrides=combo)
            except ConfigCompositionException as err:
                raise ZooError(_unknown_keys(config_name, combo, err)) from None
            _check_interpolations(cfg, combo)
            given = [o for o in combo if _plain_key(o, dirs) and _is_scalar_not_bool(_raw(cfg, override_key(o)))]
            # the second composition only when a word or a number may stand where a number or a switch belongs
            if given:
                kept = [o for o in combo if _is_group(override_key(o), dirs) or override_key(o) == "hydra.searchpath"]
                defaults = compose(config_name, overrides=kept)
                _check_value_types(cfg, defaults, given, combo if config_name == "train" else None)
            if not {"-c", "--cfg"} & set(args):
                _check_required(cfg, config_name, combo)


def _check_sweep_dir_free(config_name: str, overrides: list[str]) -> None:
    """A multirun into a ``hydra.sweep.dir`` that holds an earlier one is refused before any job starts: its jobs'
    folders would be refused one by one and its ``results.csv`` rewritten with both multiruns' rows. A search's
    study resumes in its folder, so zoo's Optuna sweeper takes one that holds its study."""
    from hydra import compose
    from hydra.errors import ConfigCompositionException

    given = [o.split("=", 1)[1].strip("'\"") for o in overrides if override_key(o) == "hydra.sweep.dir"]
    held = [name for name in ("jobs.jsonl", "results.csv") if given and (Path(given[-1]) / name).exists()]
    if not held:
        return
    try:
        sweeper = str(compose(config_name, overrides=overrides, return_hydra_config=True).hydra.sweeper._target_)
    except ConfigCompositionException:
        return  # the overrides' own error is reported next
    if "zoo_optuna_sweeper" not in sweeper:
        raise ZooError(
            f"hydra.sweep.dir: '{given[-1]}' already holds a multirun ({', '.join(held)}); nothing was overwritten. "
            "Pick another hydra.sweep.dir"
        )


def _check_interpolations(cfg: Any, overrides: list[str]) -> None:
    """A ``${...}`` on the command line that points at no key (or at one left ``???``): one line naming it, before
    Hydra starts (it would stop with a traceback once the run reads the key). Resolvers that Hydra or zoo register
    later (``${hydra:...}``, ``${repeat:...}``) are left to them."""
    from omegaconf import OmegaConf
    from omegaconf.errors import InterpolationKeyError, InterpolationToMissingValueError

    for override in overrides:
        value = override.split("=", 1)[1]
        if "${" not in value or "${hydra:" in value or override.startswith("~"):
            continue
        try:
            node = OmegaConf.select(cfg, override_key(override), throw_on_resolution_failure=True)
            if OmegaConf.is_config(node):
                OmegaConf.to_container(node, resolve=True)
        except (InterpolationKeyError, InterpolationToMissingValueError) as err:
            why = str(err.msg).splitlines()[0]
            raise ZooError(f"{override}: {why}; refer to a key of the composed config (--cfg job prints it)") from None


def _combinations(overrides: list[str], multirun: bool) -> list[list[str]]:
    """The override lists a run (or each job of a sweep) composes; sweeps Hydra's basic sweeper cannot expand
    (an optimisation sweeper's ranges) are checked through their other overrides."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parsed = OverridesParser.create().parse_overrides(overrides)
    if not multirun or not any(o.is_sweep_override() for o in parsed):
        return [overrides]
    try:
        return expand_sweep(parsed)[:16]
    except Exception:  # noqa: BLE001 - e.g. interval() for Optuna: leave those values to the sweeper
        return [[o.input_line for o in parsed if not o.is_sweep_override()]]


def _config_dirs(overrides: list[str]) -> list[Path]:
    """``conf/`` and the folders a ``hydra.searchpath=[file://DIR,...]`` override adds (a user's own configs)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    dirs = [CONF_DIR]
    for override in overrides:
        if override_key(override) == "hydra.searchpath":
            paths = OverridesParser.create().parse_overrides([override])[0].value()
            dirs += [Path(str(p).removeprefix("file://")) for p in paths if str(p).startswith("file://")]
    return dirs


def _is_group(key: str, dirs: list[Path]) -> bool:
    return "." not in key and any((d / key).is_dir() for d in dirs)


def _check_group_options(overrides: list[str], dirs: list[Path]) -> None:
    for override in overrides:
        key, value = override_key(override), override.split("=", 1)[1]
        if not _is_group(key, dirs) or override.startswith("~") or value in ("null", ""):
            continue
        options = group_options(key, dirs)
        if "," in value and all(v in options for v in value.split(",")):
            raise ZooError(f"{key}={value}: one run takes one {key}; add --multirun to run one job for each")
        if value not in options:
            close = difflib.get_close_matches(value, options, n=1)
            hint = f"did you mean {key}={close[0]}? " if close else ""
            raise ZooError(f"{key}={value} is not a zoo {key}; {hint}choose one of {', '.join(options)}")


def _unknown_keys(config_name: str, overrides: list[str], err: Exception) -> str:
    """One line for every key of ``overrides`` the config lacks (Hydra stops at the first), each with its closest
    match; Hydra's own message where the composition failed for another reason."""
    from hydra import compose
    from hydra.errors import ConfigCompositionException

    unknown, rest = [], list(overrides)
    while (key := _override_key(str(err))) is not None and key not in unknown:
        unknown.append(key)
        rest = [o for o in rest if override_key(o) != key]
        try:
            cfg = compose(config_name, overrides=rest)
            break
        except ConfigCompositionException as again:
            err = again
    else:
        return " ".join(str(err).split())
    return "; also ".join(_unknown_key(cfg, key, overrides) for key in unknown)


def _override_key(message: str) -> str | None:
    """The key of Hydra's "Could not override 'KEY'" (a key that is not in the config)."""
    prefix = "Could not override '"
    if not message.startswith(prefix):
        return None
    return message[len(prefix) :].split("'", 1)[0]


# The words users bring from the libraries the courses use, and zoo's key for the same setting (where the group has it)
SYNONYMS = {
    "validation_split": ("val_fraction", "Keras' fit(validation_split=...)"),
    "val_split": ("val_fraction", "Keras' validation_split"),
    "val_size": ("val_fraction", "scikit-learn's test_size, for validation"),
    "validation_size": ("val_fraction", "scikit-learn's test_size, for validation"),
    "test_size": ("test_fraction", "scikit-learn's train_test_split(test_size=...)"),
    "test_split": ("test_fraction", "scikit-learn's test_size"),
    "learning_rate": ("lr", "Keras' and scikit-learn's learning_rate"),
    "epochs": ("max_epochs", "Keras' fit(epochs=...)"),
    "num_epochs": ("max_epochs", "the number of epochs"),
    "n_epochs": ("max_epochs", "the number of epochs"),
    "max_iter": ("max_epochs", "scikit-learn's MLPClassifier(max_iter=...)"),
    "gpus": ("devices", "Lightning 1.x's Trainer(gpus=N); with trainer.accelerator=gpu"),
    "hidden_layer_sizes": ("hidden", "scikit-learn's MLPClassifier(hidden_layer_sizes=...)"),
    "units": ("hidden", "Keras' Dense(units); a list of widths"),
}


def _unknown_key(cfg: Any, key: str, overrides: list[str]) -> str:
    """One line naming the unknown key and the closest existing one: zoo's word for a word another library uses
    (:data:`SYNONYMS`) or the closest spelling beside it, else the setting of that name (or synonym) deeper in the
    config (``lr=0.01`` -> ``optimizer.lr``, ``epochs=5`` -> ``trainer.max_epochs``)."""
    from omegaconf import DictConfig, OmegaConf

    parts = key.split(".")
    parent, known = cfg, []
    for depth, part in enumerate(parts):
        known = list(parent.keys()) if isinstance(parent, DictConfig) else []
        if part not in known:
            where = ".".join(parts[:depth])
            ours, theirs = SYNONYMS.get(part, (None, ""))
            close = difflib.get_close_matches(part, [str(k) for k in known], n=1)
            if ours in known:
                hint = f"{'.'.join([*parts[:depth], ours])} ({theirs})"
            elif close:
                hint = ".".join([*parts[:depth], close[0]])
            else:
                hint = _setting_named(parent, {part, ours} - {None}, where) if isinstance(parent, DictConfig) else ""
                if hint and hint.rsplit(".", 1)[-1] != part:
                    hint = f"{hint} ({theirs})"
            value = next(o.split("=", 1)[1] for o in overrides if override_key(o) == key)
            hint = f"did you mean {hint}? " if hint else ""
            return f"{key} is not a setting{f' of {where}' if where else ''}; {hint}to add a new key: +{key}={value}"
        parent = OmegaConf.select(parent, part, throw_on_resolution_failure=False) if depth < len(parts) - 1 else None
    return f"cannot override {key}"


def _setting_named(node: Any, names: set[str], where: str) -> str:
    """The shallowest setting under ``node`` (at ``where``) whose own name is one of ``names`` (Hydra's settings
    aside), as a full key; "" where none is."""
    from omegaconf import OmegaConf

    found = [
        key
        for key, _ in leaves(OmegaConf.to_container(node, resolve=False), where)
        if key.rsplit(".", 1)[-1] in names and not key.startswith("hydra.")
    ]
    return min(found, key=lambda k: (k.count("."), k), default="")


def _plain_key(override: str, dirs: list[Path]) -> bool:
    """A ``key=value`` that sets an existing setting (not a group, an addition, a deletion or Hydra's own)."""
    key = override_key(override)
    return not override.startswith(("~", "+")) and not _is_group(key, dirs) and not key.startswith("hydra.")


# Trainer arguments that Lightning takes as a switch or one more kind of value: that kind, and how to tell it
SWITCHES_AND_MORE: dict[str, tuple[str, Callable[[Any], bool]]] = {
    "trainer.deterministic": ("warn", lambda value: value == "warn"),
    "trainer.fast_dev_run": ("a number of batches", lambda value: isinstance(value, int)),
}


def _is_scalar_not_bool(value: Any) -> bool:
    return isinstance(value, str | int | float) and not isinstance(value, bool)


def _check_value_types(cfg: Any, defaults: Any, overrides: list[str], run: list[str] | None = None) -> None:
    """A word where the config holds a number (``optimizer.lr=abc``; ``auto`` and ``full`` stand for counts), anything
    but true or false where it holds a switch (``compile=maybe``; ``cuda_graphs`` and ``channels_last`` also take
    auto). The default named is the one the run would take: its recipe's, where a training run's (``run``, its
    overrides) has one for the key."""
    for override in overrides:
        key = override_key(override)
        default, value = _raw(defaults, key), _raw(cfg, key)
        if key in AUTO_SWITCHES:
            check_switch(key, value)
            continue
        if isinstance(default, bool) and not isinstance(value, bool) and value is not None:
            also, accepts = SWITCHES_AND_MORE.get(key, ("", lambda _: False))
            if not (isinstance(value, str) and value.startswith("${")) and not accepts(value):
                takes = f"true, false or {also}" if also else "true or false"
                raise ZooError(f"{key}={value} is not valid; {key} takes {takes} ({_default(key, default, run)})")
            continue
        if isinstance(default, bool) or not isinstance(default, int | float) or not isinstance(value, str):
            continue
        if value.startswith("${") or (isinstance(default, int) and value in ("auto", "full")):
            continue
        kind = "an integer" if isinstance(default, int) else "a number"
        raise ZooError(f"{key}={value} is not valid; {key} takes {kind} ({_default(key, default, run)})")


def _default(key: str, default: Any, run: list[str] | None) -> str:
    """``default V``: what the run takes for ``key`` where it is not given, its recipe's value where it has one."""
    recipe = recipe_for([o for o in run if override_key(o) != key]) if run is not None else None
    value = next((o.split("=", 1)[1] for o in recipe.overrides if override_key(o) == key), None) if recipe else None
    if value is not None:
        return f"default {value} with the {recipe.name} recipe"
    return f"default {str(default).lower() if isinstance(default, bool) else default}"


def _check_required(cfg: Any, config_name: str, overrides: list[str]) -> None:
    """Values the run cannot go without (``ckpt_path: ???``; an experiment's ``data.path: ???``, also where it lands on
    a value another config set, as ``model.weights: ???`` on the model's null): one line naming every key left out,
    the option that needs it and what to give (the comment after its ``???``)."""
    from omegaconf import OmegaConf

    required = {r.key: r for r in required_values(config_name, overrides, _config_dirs(overrides))}

    for key, value in leaves(OmegaConf.to_container(cfg, resolve=False)):  # a ``???`` the command line itself gave
        if value == "???" and key not in required:
            required[key] = Required(key, "", "")
    if not required:
        return
    by_option: dict[str, list[Required]] = {}
    for value in required.values():
        by_option.setdefault(value.option, []).append(value)
    raise ZooError(
        "; ".join(
            f"{option or f'scripts/{config_name}.py'} needs {_and([r.key for r in values])}: "
            f"give {_and([_give(r) for r in values])}"
            for option, values in by_option.items()
        )
    )


def _give(required: Required) -> str:
    """``KEY=VALUE (what it is)`` from the comment after the ``???``, used as it stands where it spells that already
    (``# data.path=FILE (Kaggle's titanic/train.csv)``)."""
    if required.hint.startswith(f"{required.key}="):
        return required.hint
    value = "PATH" if required.key.endswith("path") else "VALUE"
    return f"{required.key}={value}" + (f" ({required.hint})" if required.hint else "")


def _and(words: list[str]) -> str:
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} and {words[-1]}"


def _raw(cfg: Any, key: str) -> Any:
    """The value at ``key`` as written (interpolations unresolved), or None."""
    from omegaconf import DictConfig, OmegaConf

    parent_key, _, last = key.rpartition(".")
    parent = OmegaConf.select(cfg, parent_key, throw_on_resolution_failure=False) if parent_key else cfg
    if not isinstance(parent, DictConfig) or last not in parent:
        return None
    return OmegaConf.to_container(parent, resolve=False).get(last)
