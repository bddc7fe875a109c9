"""``--help`` for the scripts, answered before Hydra is even imported (Hydra's own help composes every group)."""

from __future__ import annotations

import sys
from pathlib import Path

CONF_DIR = Path(__file__).resolve().parents[1] / "conf"
HIDDEN_GROUPS = {"hydra", "base"}

EXAMPLES = """\
examples:
  python scripts/train.py                                         # MLP on digits, offline, < 1 minute
  python scripts/train.py model=mlp data=boston optimizer=adam trainer.max_epochs=50
  python scripts/train.py model=logistic data=boston data.target=above_median
  python scripts/train.py data=csv data.path=titanic.csv data.target=Survived data.drop=[Name,Ticket]
  python scripts/train.py model.net.hidden=[64,32] model.net.dropout=0.2 model.l2=1e-4 seed=1
  python scripts/train.py model.net.hidden=[hagan]                  # width from a sizing rule (seed 004)
  python scripts/train.py data.batch_size=full optimizer=sgd        # full-batch gradient descent
  python scripts/train.py model=cnn data=digits                     # or lenet5, resnet; mnist5k, cifar10, ...
  python scripts/train.py experiment=lenet5_mnist5k                 # a recipe from conf/experiment/
  python scripts/train.py model=timm model.backbone=resnet18 model.pretrained=true data=cifar10
  python scripts/train.py model=timm model.weights=DIR model.finetune.mode=frozen data=images data.path=PICS
  python scripts/train.py experiment=unet_shapes                    # segmentation; data=masks data.path=DIR
  python scripts/train.py experiment=detector_boxes                 # detection; data=yolo data.path=DIR
  python scripts/train.py experiment=triplet_digits                 # triplet-loss embeddings
  python scripts/train.py model=elm model.net.hidden=[1000]         # Extreme Learning Machine, solved in one pass
  python scripts/train.py cv.folds=5                                # 5-fold cross-validation: mean ± std
  python scripts/train.py callbacks.early_stopping.patience=5       # early stopping, best weights restored
  python scripts/train.py --multirun hparams_search=optuna          # or grid, genetic: results.csv, best.yaml
  python scripts/compare.py data=digits                             # MLP, ELM, logistic vs SVM, forest, k-NN
  python scripts/train.py ckpt_path=last                            # resume the newest run of this experiment
  python scripts/train.py debug=fdr                                 # fdr | overfit | limit | profiler
  python scripts/train.py --multirun model=linear,mlp data=boston   # one run folder and W&B run per job
  python scripts/eval.py ckpt_path=logs/mlp-digits/runs/<time>/checkpoints/last.ckpt

--cfg job prints the composed config; hydra.run.dir=DIR picks the run folder; HYDRA_FULL_ERROR=1 shows tracebacks.
"""


def exit_with_help_if_asked(config_name: str) -> None:
    """Print the config groups (default marked with *) and examples, then exit, when -h/--help is given."""
    if not {"-h", "--help"} & set(sys.argv[1:]):
        return
    print(help_text(config_name))
    sys.exit(0)


def help_text(config_name: str) -> str:
    import yaml

    primary = yaml.safe_load((CONF_DIR / f"{config_name}.yaml").read_text()) or {}
    defaults = {k: v for d in primary.get("defaults", []) if isinstance(d, dict) for k, v in d.items()}
    lines = [
        f"zoo {config_name}: from linear regression to CNNs and transfer learning, with Lightning, Hydra and W&B.",
        "",
        f"usage: python scripts/{config_name}.py [GROUP=OPTION ...] [KEY=VALUE ...] [--multirun] [--cfg job]",
        "",
        "config groups (GROUP=OPTION, * = default):",
    ]
    for group in sorted(p for p in CONF_DIR.iterdir() if p.is_dir() and p.name not in HIDDEN_GROUPS):
        options = sorted(f.stem for f in group.glob("*.yaml"))
        marked = [f"*{o}" if o == defaults.get(group.name) else o for o in options]
        lines.append(f"  {group.name:<11} {', '.join(marked)}")
    return "\n".join(lines) + "\n\n" + EXAMPLES
