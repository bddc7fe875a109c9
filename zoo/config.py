"""Compose zoo's configs from Python (tests, benchmarks, notebooks): what a script would see for the same overrides;
and instantiate them so that a config mistake stays a one-line error."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from omegaconf import DictConfig, open_dict

from zoo.cli import CONF_DIR
from zoo.errors import ZooError


def compose_config(
    overrides: list[str], log_dir: str | Path, config_name: str = "train", folder: str = "run"
) -> DictConfig:
    """Compose ``conf/<config_name>.yaml`` with ``overrides``; the run folder is ``log_dir/<name>/runs/<folder>``."""
    from hydra import compose, initialize_config_dir
    from hydra.core.hydra_config import HydraConfig

    from zoo.search import register_resolvers

    register_resolvers()
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        cfg = compose(config_name, overrides=overrides, return_hydra_config=True)
    HydraConfig.instance().set_config(cfg)  # so ${hydra:...} interpolations resolve outside a Hydra run
    with open_dict(cfg):
        cfg.paths.log_dir = str(log_dir)
        cfg.paths.output_dir = str(Path(log_dir) / cfg.name / "runs" / folder)
    return cfg


def instantiate(config: Any, *args: Any, **kwargs: Any) -> Any:
    """``hydra.utils.instantiate``, except that a ZooError the target raises (a data module or net refusing its
    arguments) or Lightning's refusal of a trainer setting reaches the user as one line, instead of inside Hydra's
    InstantiationException."""
    from hydra.errors import InstantiationException
    from hydra.utils import instantiate as hydra_instantiate

    try:
        return hydra_instantiate(config, *args, **kwargs)
    except InstantiationException as err:
        if isinstance(err.__cause__, ZooError):
            raise err.__cause__ from None
        if type(err.__cause__).__name__ == "MisconfigurationException":  # Lightning refusing a trainer.* value
            raise ZooError(" ".join(str(err.__cause__).split())) from None
        raise
