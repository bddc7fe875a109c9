"""Compose zoo's configs from Python (tests, benchmarks, notebooks): what a script would see for the same overrides;
and instantiate them so that a config mistake stays a one-line error."""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator
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
    from hydra.utils import instantiate as hydra_instantiate

    with settings_of(None):
        return hydra_instantiate(config, *args, **kwargs)


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
