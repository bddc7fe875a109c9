"""Seconds per training epoch: zoo against a hand-written PyTorch loop and its peers, side by side in one process.

    python benchmarks/run.py mlp              # MLP 784-128-10, 60,000 generated samples, batch 128, Adam, CPU
    python benchmarks/run.py lenet5           # LeNet-5 (classic), 3,500 real 28x28 MNIST images, batch 128
    python benchmarks/run.py mlp lenet5 text elm   # several; the last line is the first case's ratio
    python benchmarks/run.py mlp lenet5 text --device cuda   # every side on the GPU (hpelm stays on the CPU)
    python benchmarks/run.py fashion          # time to accuracy on real Fashion-MNIST: experiment=fashion_fast
                                              # against Keras' convnet example (make data fetches the images)

A case is a module ``benchmarks/cases/<name>.py`` whose ``measure(epochs, workdir, device=...)`` returns seconds per
epoch for each side: ``zoo`` (composed config, Lightning Trainer, progress bar, checkpoints, as a user runs it), the
floor ``hand-written`` (a plain loop with the same net, initial weights, tensors, optimizer and batch size),
``keras`` (Keras 3, torch backend), ``lightning-dataloader`` (Lightning fed by a per-sample DataLoader, Trainer
defaults, as lightning-hydra-template does it) and, for ``elm``, ``hpelm``; ``SIDE:MODEL`` for each model of a case
with several (``zoo:lstm``, ``keras:lstm``), ``PEER:NAME`` for a peer set up another way. Peers come from
``pip install .[bench]``; a missing one reads "not installed". The timed span is the training part of each epoch
(first to last batch). Epoch 1 is a warm-up; the figure is the fastest of the epochs after it (other work on the
machine only adds time); ``--rounds R`` measures every side R times in turn and keeps the fastest epoch of all, as
the machine's speed drifts over minutes. Writes the table into benchmarks/results.md, which keeps the latest reading
for each kind of machine: a CPU run replaces the ``## CPU`` section, a ``--device cuda`` run the ``## GPU`` one. The
last line reads ``zoo/hand-written: R``.

A time-to-accuracy case (``fashion``) has a ``report(rounds, folder)`` and a ``TITLE`` of its own: it trains each
side for the whole budget, scores the test set after each epoch, writes its figure beside results.md and its own
section (``## <TITLE>, CPU``), and its last line is the ratio of training times to the same accuracy.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import importlib
import importlib.metadata
import os
import platform
import re
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script: the cases import ``benchmarks.common``
    sys.path.insert(0, str(ROOT))

from benchmarks.common import Skip, positive, require_cuda, results_file, zoo_epochs  # noqa: E402  (zoo_epochs: the cases' helper, importable here)

CASES = sorted(p.stem for p in (ROOT / "benchmarks" / "cases").glob("*.py") if not p.stem.startswith("_"))
PEERS = ("keras", "lightning-dataloader", "hpelm")

__all__ = ["zoo_epochs", "CASES", "main", "summarise"]


def per_epoch(seconds: list[float]) -> float:
    """The fastest epoch after the warm-up one (the only one if there is one): other work on the machine only ever
    adds time, so the fastest epoch is the steadiest estimate of a side's own cost."""
    return min(seconds[1:] or seconds)


def merge_rounds(rounds: list[dict[str, list[float]]]) -> dict[str, list[float]]:
    """One list of epochs per side from several rounds of a case: the first round whole, the later ones without
    their warm-up epoch (so :func:`per_epoch` still leaves out only a warm-up); accuracies from the first round."""
    sides = {side: list(seconds) for side, seconds in rounds[0].items()}
    for later in rounds[1:]:
        for side, seconds in later.items():
            if not side.startswith("acc:"):
                sides.setdefault(side, []).extend(seconds[1:])
    return sides


def summarise(case: str, sides: dict[str, list[float]]) -> list[tuple[str, str, float | None, str]]:
    """Rows ``(case, side, seconds per epoch or None, comparison)``: each zoo model against its hand-written loop
    (``zoo/hand-written``), each peer against zoo (how many times zoo's time it takes): ``keras:lstm`` against
    ``zoo:lstm`` where the case has several models, else against ``zoo``."""
    rows = []
    for side, seconds in sides.items():
        if side.startswith("acc:"):  # a case's test accuracy beside its timings (elm), not seconds
            rows.append((case, f"{side[4:]} accuracy", None, f"test/acc {seconds[0]:.3f}"))
            continue
        t = per_epoch(seconds) if seconds else None
        name = side.split(":")[1] if ":" in side else ""  # the model of zoo:lstm and zoo:lstm:cuda_graphs=false
        if t is None:
            note = "not installed"
        elif side.startswith("zoo"):
            hand = sides.get(f"hand-written:{name}") or sides.get("hand-written")
            note = f"zoo/hand-written {t / per_epoch(hand):.2f}" if hand else ""
        elif side.split(":", 1)[0] in PEERS and (zoo := sides.get(f"zoo:{name}") or sides.get("zoo")):
            note = f"{side}/zoo {t / per_epoch(zoo):.2f}"
        else:
            note = ""
        rows.append((case, side, t, note))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("cases", nargs="*", default=["mlp"], choices=CASES)
    parser.add_argument(
        "--epochs", type=positive, help="epochs per side (the first is a warm-up); default 4, fashion: its experiment's"
    )
    parser.add_argument("--out", type=Path, help="the Markdown file (default benchmarks/results.md)")
    parser.add_argument("--threads", type=positive, help="torch threads (1 steadies figures on a shared machine)")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu", help="where every side trains")
    parser.add_argument(
        "--rounds", type=positive, default=1, help="measure every side R times, in turn (steadier on a shared machine)"
    )
    args = parser.parse_args()
    out = results_file(parser, args.out)

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    if args.device == "cuda":
        why = "--device cuda: torch sees no CUDA GPU here; run on a machine with one, or use --device cpu"
        require_cuda(parser, why)
    os.environ["KERAS_TORCH_DEVICE"] = args.device  # read when keras is first imported

    load = os.getloadavg()[0]  # another busy process on these cores slows every side, unevenly
    where = torch.cuda.get_device_name() if args.device == "cuda" else f"{cpu_model()}, {os.cpu_count()} cores"
    kind = "GPU" if args.device == "cuda" else "CPU"
    command = " ".join(["python benchmarks/run.py", *sys.argv[1:]])

    def section(heading: str, measured: str, table: list[str]) -> None:
        """Print a section and put it in ``out`` in place of the one with the same heading."""
        text = "\n".join(
            [
                f"## {heading}",
                "",
                f"`{command}`",
                "",
                f"{datetime.date.today()}, {where}; {versions()}, {torch.get_num_threads()} threads; {measured}; "
                f"load average {load:.1f} at start, {os.getloadavg()[0]:.1f} at the end",
                "",
                *table,
            ]
        )
        print(text)
        out.write_text(with_section(out.read_text() if out.is_file() else HEADER, text))

    rows, endings = [], {}  # endings: the last line of each time-to-accuracy case
    with tempfile.TemporaryDirectory() as tmp:
        for case in args.cases:
            module = importlib.import_module(f"benchmarks.cases.{case}")
            epochs = args.epochs or getattr(module, "EPOCHS", 4)
            try:
                rounds = [
                    module.measure(epochs, Path(tmp) / case / str(r), device=args.device) for r in range(args.rounds)
                ]
            except Skip as why:
                print(f"{case}: skipped: {why}")
                continue
            if hasattr(module, "report"):  # time to accuracy: a section of its own
                table, endings[case] = module.report(rounds, out.parent)
                rounds_note = f", the fastest of {args.rounds} rounds" if args.rounds > 1 else ""
                section(f"{module.TITLE}, {kind}", f"{epochs} epochs a side{rounds_note}", table)
                continue
            sides = merge_rounds(rounds)
            rows += summarise(case, sides)
            for side, seconds in sides.items():  # the raw figures, to judge the noise
                print(f"{case} {side}: " + " ".join(f"{t:.3f}" for t in seconds))
    if rows:
        rounds_note = f" of {args.rounds} rounds" if args.rounds > 1 else ""
        section(
            kind,
            f"fastest of epochs 2..{args.epochs or 4}{rounds_note}",
            [
                "| case | side | s/epoch | comparison |",
                "|---|---|---|---|",
                *[f"| {c} | {s} | {'-' if t is None else f'{t:.3f}'} | {n} |" for c, s, t, n in rows],
            ],
        )
    first = [r for r in rows if r[0] == args.cases[0]]
    if args.cases[0] in endings or not first:
        print(endings.get(args.cases[0], f"{args.cases[0]}: nothing measured"))
        return
    zoo = next((t for _, s, t, _ in first if s == "zoo" or s.startswith("zoo:")), None)
    hand = next((t for _, s, t, _ in first if s == "hand-written" or s.startswith("hand-written:")), None)
    if zoo and hand:
        print(f"zoo/hand-written: {zoo / hand:.2f}")
    else:  # elm: its floor is hpelm, in the table
        print(f"zoo/hand-written: - (case {args.cases[0]} has no hand-written side)")


HEADER = "# zoo benchmarks\n\nThe latest reading for each kind of machine; git history keeps the older ones.\n"


def with_section(text: str, section: str) -> str:
    """``text`` with ``section`` (a ``## KIND`` heading and its table) in place of that kind's section, or added; the
    other sections are kept as they are."""
    heading, new = section.splitlines()[0], section.rstrip()
    parts = [part.rstrip() for part in re.split(r"(?m)^(?=## )", text) if part.strip()]
    replaced = [new if part.splitlines()[0] == heading else part for part in parts]
    return "\n\n".join(replaced if replaced != parts or new in parts else [*parts, new]) + "\n"


def versions() -> str:
    """The versions of what is measured: Python, torch, Lightning and the peers that are installed."""
    found = [f"Python {platform.python_version()}"]
    for package in ("torch", "lightning", "keras", "hpelm"):
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):  # a peer that is not installed
            found.append(f"{package} {importlib.metadata.version(package)}")
    return ", ".join(found)


def cpu_model() -> str:
    """The CPU's name as the kernel reports it (``model name`` in /proc/cpuinfo), else Python's guess."""
    info = Path("/proc/cpuinfo")
    lines = info.read_text().splitlines() if info.is_file() else []
    return next((line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")), platform.machine())


if __name__ == "__main__":
    main()
