"""zoo's GPU options side by side, on a CUDA GPU: seconds per training epoch and test accuracy of one net under
fp32, TF32 (``matmul_precision=high``), bf16 autocast (``trainer.precision=bf16-mixed``), bf16 with NHWC maps
(``channels_last=true``) and that with ``compile=true``.

    python benchmarks/gpu_options.py                     # ResNet-18 on mnist5k (3,500 training images), batch 128
    python benchmarks/gpu_options.py --epochs 6 model=unet data=shapes   # any zoo overrides after the options

Epoch 1 is a warm-up (compilation happens there); the figure is the fastest later epoch, as in benchmarks/run.py.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.common import positive, require_cuda, zoo_epochs  # noqa: E402
from benchmarks.run import per_epoch  # noqa: E402

NET = ["model=resnet", "model.depth=18", "data=mnist5k", "data.batch_size=128"]
OPTIONS = {
    "fp32": [],
    "tf32 (matmul_precision=high)": ["matmul_precision=high"],
    "bf16-mixed": ["trainer.precision=bf16-mixed"],
    "bf16-mixed + channels_last": ["trainer.precision=bf16-mixed", "channels_last=true"],
    "bf16-mixed + channels_last + compile": ["trainer.precision=bf16-mixed", "channels_last=true", "compile=true"],
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=positive, default=4, help="epochs per option (the first is a warm-up)")
    parser.add_argument("overrides", nargs="*", help=f"zoo overrides for the net and data (default: {' '.join(NET)})")
    args = parser.parse_args()
    require_cuda(parser)
    import torch

    net = args.overrides or NET
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for i, (name, options) in enumerate(OPTIONS.items()):
            seconds, _, _, metrics = zoo_epochs(
                [*net, *options, "logger=none", "trainer.accelerator=gpu"], args.epochs, Path(tmp) / str(i), test=True
            )
            acc = metrics.get("test/acc")
            rows.append((name, per_epoch(seconds), None if acc is None else float(acc)))
    fp32 = rows[0][1]
    print(f"\n{torch.cuda.get_device_name()}, torch {torch.__version__}: {' '.join(net)}, {args.epochs} epochs\n")
    print("| option | s/epoch | against fp32 | test/acc |")
    print("|---|---|---|---|")
    for name, t, acc in rows:
        print(f"| {name} | {t:.3f} | {fp32 / t:.2f}x | {'-' if acc is None else f'{acc:.4f}'} |")


if __name__ == "__main__":
    main()
