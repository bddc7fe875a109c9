"""Predict new inputs: ``python scripts/predict.py ckpt_path=PATH input=FILE_OR_FOLDER [output=FILE.csv]``."""

from zoo.cli import collect_new_objects_only, exit_without_teardown, start

start("predict")  # --help at once; a bad override is one line and exit 2, before Hydra runs

import hydra  # noqa: E402
from omegaconf import DictConfig  # noqa: E402

from zoo.errors import report_user_errors  # noqa: E402


@hydra.main(version_base="1.3", config_path="../conf", config_name="predict")
def main(cfg: DictConfig) -> None:
    from zoo.predict import predict

    with collect_new_objects_only():
        report_user_errors(predict, cfg)


if __name__ == "__main__":
    main()
    exit_without_teardown()  # a failure exits from main, with its own code, as usual
