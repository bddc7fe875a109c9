"""Export a checkpoint for serving: ``python scripts/export.py ckpt_path=PATH format=onnx|safetensors|pt2``."""

from zoo.cli import collect_new_objects_only, exit_without_teardown, start

start("export")  # --help at once; a bad override is one line and exit 2, before Hydra runs

import hydra  # noqa: E402
from omegaconf import DictConfig  # noqa: E402

from zoo.errors import report_user_errors  # noqa: E402


@hydra.main(version_base="1.3", config_path="../conf", config_name="export")
def main(cfg: DictConfig) -> None:
    from zoo.export import export

    with collect_new_objects_only():
        report_user_errors(export, cfg)


if __name__ == "__main__":
    main()
    exit_without_teardown()  # a failure exits from main, with its own code, as usual
