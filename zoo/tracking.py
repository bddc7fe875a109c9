"""Experiment tracking: Weights & Biases by default, offline unless the user is logged in or asks otherwise."""

from __future__ import annotations

import netrc
import os
import sys
from pathlib import Path
from typing import Any

MODES = ("auto", "online", "offline", "disabled")


def wandb_mode(mode: str = "auto") -> str:
    """``auto``: WANDB_MODE if set, online with an API key or a ``wandb login`` entry in ~/.netrc, else offline."""
    if mode not in MODES:
        from zoo.errors import ZooError

        raise ZooError(f"logger.wandb.mode={mode!r} is not valid; choose one of {', '.join(MODES)}")
    if mode != "auto":
        return mode
    if os.environ.get("WANDB_MODE"):
        return os.environ["WANDB_MODE"]
    if os.environ.get("WANDB_API_KEY"):
        return "online"
    try:
        netrc_file = Path(os.environ.get("NETRC", Path.home() / ".netrc"))
        if netrc_file.is_file() and netrc.netrc(netrc_file).authenticators("api.wandb.ai"):
            return "online"
    except (OSError, netrc.NetrcParseError):
        pass
    return "offline"


def wandb_logger(mode: str = "auto", **kwargs: Any):
    """A Lightning WandbLogger whose mode is chosen by :func:`wandb_mode`; other arguments go to ``wandb.init``."""
    from lightning.pytorch.loggers import WandbLogger

    resolved = wandb_mode(mode)
    return WandbLogger(offline=resolved == "offline", mode=resolved, **kwargs)


def finish_wandb(exit_code: int = 0) -> None:
    """Close the W&B run, so that the next job of a multirun starts its own."""
    wandb = sys.modules.get("wandb")
    if wandb is not None and getattr(wandb, "run", None) is not None:
        wandb.finish(exit_code=exit_code)
