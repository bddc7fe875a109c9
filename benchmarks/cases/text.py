"""Text case for ``benchmarks/run.py text``: seconds per training epoch of ``text_avgpool`` and an LSTM (``rnn``)
through zoo against a hand-written PyTorch loop with the same net, initial weights, token tensors, optimizer (Adam,
lr 1e-3, cross-entropy over the two classes) and batch size.

    python -c "from pathlib import Path; from benchmarks.cases.text import measure; print(measure(4, Path('/tmp/b')))"
"""

from __future__ import annotations

from pathlib import Path

# 20,000 generated reviews: 14,000 training texts of at most 16 tokens, batch 64
DATA = ["data=text_synth", "data.count=20000", "data.batch_size=64", "optimizer=adam", "model.loss=cross_entropy"]
MODELS = {"text_avgpool": ["model=text_avgpool"], "lstm": ["model=rnn", "model.cell=lstm"]}


def measure(epochs: int, workdir: Path, device: str = "cpu") -> dict[str, list[float]]:
    """Seconds per training epoch on ``device``, ``{"zoo:<model>": [...], "hand-written:<model>": [...]}``."""
    from benchmarks.common import accelerator, hand_epochs, zoo_epochs
    from zoo.config import compose_config
    from zoo.run import build_datamodule, build_task

    results: dict[str, list[float]] = {}
    for name, model in MODELS.items():
        overrides = [*model, *DATA, "logger=none", f"trainer.accelerator={accelerator(device)}"]
        zoo_s, dm, initial = zoo_epochs(overrides, epochs, Path(workdir) / name)
        cfg = compose_config(overrides, Path(workdir) / f"{name}-hand")
        net = build_task(cfg, build_datamodule(cfg.data, cfg.model).spec).net  # the same class and sizes...
        net.load_state_dict(initial)  # ...and the same initial weights as zoo's
        x, y = dm.splits["train"]
        results[f"zoo:{name}"] = zoo_s
        results[f"hand-written:{name}"] = hand_epochs(net.train(), None, x, y, epochs, dm.batch_size, device=device)
    return results
