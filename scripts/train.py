"""Train a model and test it: ``python scripts/train.py model=mlp data=boston optimizer=adam trainer.max_epochs=50``.

The run module (torch, Lightning) is imported inside ``main``: ``--cfg job`` pays only for Hydra.
"""

from zoo.cli import collect_new_objects_only, exit_without_teardown, start

start("train")  # --help at once; a bad override is one line and exit 2, before Hydra runs

import hydra  # noqa: E402
from omegaconf import DictConfig  # noqa: E402

from zoo.search import run_job  # noqa: E402  (also registers the ${repeat:...} resolver searches use)


@hydra.main(version_base="1.3", config_path="../conf", config_name="train")
def main(cfg: DictConfig) -> float | dict[str, float] | None:
    from zoo.internals import torchmetrics_without_unused_extras

    with torchmetrics_without_unused_extras(cfg):
        from zoo.run import train

    with collect_new_objects_only():
        return run_job(train, cfg)  # optimized_metric's value for a search; a failing multirun job is recorded


if __name__ == "__main__":
    main()
    exit_without_teardown()  # a failure exits from main, with its own code, as usual
