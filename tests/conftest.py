"""Shared helpers: compose the real configs with Hydra's compose API and run them in a temporary folder."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

if os.environ.get("PYTEST_XDIST_WORKER_COUNT"):  # `pytest -n N`: the workers share the cores, torch threads too
    _threads = max(1, (os.cpu_count() or 1) // int(os.environ["PYTEST_XDIST_WORKER_COUNT"]))
    os.environ.setdefault("OMP_NUM_THREADS", str(_threads))  # the runs the tests start as processes inherit it
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(int(os.environ["OMP_NUM_THREADS"]))

os.environ.setdefault("WANDB_MODE", "offline")  # tests never touch the network
os.environ.setdefault("WANDB_SILENT", "true")
os.environ.pop("WANDB_API_KEY", None)
os.environ.setdefault("HF_HUB_OFFLINE", "1")  # pretrained weights come from files the tests write

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "conf"


def compose(overrides: list[str], tmp: Path, config_name: str = "train", folder: str = "run"):
    """The config ``python scripts/<config_name>.py OVERRIDES`` would see (logger off), logs under ``tmp/logs``."""
    from zoo.config import compose_config

    return compose_config(["logger=none", *overrides], tmp / "logs", config_name, folder)


@pytest.fixture
def train_run(tmp_path):
    """Run zoo's train() on overrides; returns (test metrics, run folder)."""
    from zoo.run import train

    def run(*overrides: str, folder: str = "run"):
        cfg = compose(list(overrides), tmp_path, folder=folder)
        return train(cfg), Path(cfg.paths.output_dir)

    return run


@pytest.fixture(scope="module")
def mnist_dir(tmp_path_factory) -> Path:
    """``data/MNIST/raw`` with 1,000 training and 300 test images: real MNIST digits in IDX files."""
    from tests.formats import real_digits, write_idx

    root = tmp_path_factory.mktemp("data")
    x, y = real_digits(1300)
    write_idx(root / "MNIST" / "raw", "train", x[:1000], y[:1000])
    write_idx(root / "MNIST" / "raw", "t10k", x[1000:], y[1000:])
    return root
