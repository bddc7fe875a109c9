"""Evaluate a checkpoint on its test split: ``python scripts/eval.py ckpt_path=PATH``."""

from zoo.cli import collect_new_objects_only, exit_without_teardown, start

start("eval")  # --help at once; a bad override is one line and exit 2, before Hydra runs

import hydra  # noqa: E402
from omegaconf import DictConfig  # noqa: E402

from zoo.errors import report_user_errors  # noqa: E402


@hydra.main(version_base="1.3", config_path="../conf", config_name="eval")
def main(cfg: DictConfig) -> dict[str, float]:
    from zoo.run import evaluate

    with collect_new_objects_only():
        return report_user_errors(evaluate, cfg)


if __name__ == "__main__":
    main()
    exit_without_teardown()  # a failure exits from main, with its own code, as usual
