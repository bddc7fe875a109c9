"""Shared helpers: compose the real configs with Hydra's compose API and run them in a temporary folder."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("WANDB_MODE", "offline")  # tests never touch the network
os.environ.setdefault("WANDB_SILENT", "true")
os.environ.pop("WANDB_API_KEY", None)

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "conf"


def compose(overrides: list[str], tmp: Path, config_name: str = "train", folder: str = "run"):
    """The config ``python scripts/<config_name>.py OVERRIDES`` would see, with logs under ``tmp/logs``.

    The run folder is ``tmp/logs/<name>/runs/<folder>``, where Hydra would put it.
    """
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import open_dict

    with initialize_config_dir(str(CONF), version_base="1.3"):
        cfg = hydra_compose(config_name, overrides=["logger=none", *overrides], return_hydra_config=True)
    HydraConfig.instance().set_config(cfg)
    with open_dict(cfg):
        cfg.paths.log_dir = str(tmp / "logs")
        cfg.paths.output_dir = str(tmp / "logs" / cfg.name / "runs" / folder)
    return cfg


@pytest.fixture
def train_run(tmp_path):
    """Run zoo's train() on overrides; returns (test metrics, run folder)."""
    from zoo.run import train

    def run(*overrides: str, folder: str = "run"):
        cfg = compose(list(overrides), tmp_path, folder=folder)
        return train(cfg), Path(cfg.paths.output_dir)

    return run
