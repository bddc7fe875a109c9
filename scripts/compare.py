"""Compare zoo's MLP, ELM and logistic regression with scikit-learn's SVM, random forest and k-NN on one split:
``python scripts/compare.py data=digits`` (any tabular or flattenable data set)."""

from zoo.cli import collect_new_objects_only, exit_without_teardown, start

start("compare")  # --help at once; a bad override is one line and exit 2, before Hydra runs

import hydra  # noqa: E402
from omegaconf import DictConfig  # noqa: E402

import zoo.search  # noqa: E402, F401  (registers the resolvers zoo's configs use)
from zoo.errors import report_user_errors  # noqa: E402


@hydra.main(version_base="1.3", config_path="../conf", config_name="compare")
def main(cfg: DictConfig) -> None:
    from zoo.compare import compare

    with collect_new_objects_only():
        report_user_errors(compare, cfg)


if __name__ == "__main__":
    main()
    exit_without_teardown()  # a failure exits from main, with its own code, as usual
