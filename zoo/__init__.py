"""zoo: a PyTorch Lightning model zoo, from linear regression to the MLP and beyond.

From Python or Jupyter: ``zoo.fit(model="mlp", data="digits")`` returns a ``zoo.Run``; ``zoo.load(folder)`` reads
one back; ``zoo.Sequential``, ``zoo.Input`` and ``zoo.Model`` write a net of your own the Keras ways
(``zoo.fit(net=..., data=...)``). Importing zoo costs no torch: each name loads its module on first use, so
``python scripts/train.py --help`` stays instant.
"""

from __future__ import annotations

import importlib
import warnings
from typing import Any

from zoo.errors import ZooError
from zoo.errors import one_line_errors_in_ipython as _one_line_errors_in_ipython

__version__ = "0.1.0"
__all__ = ["Input", "Model", "Run", "Sequential", "ZooError", "fit", "load"]

_WHERE = {
    "fit": "zoo.api",
    "load": "zoo.api",
    "Run": "zoo.api",
    "Sequential": "zoo.nets.functional",
    "Input": "zoo.nets.functional",
    "Model": "zoo.nets.functional",
}


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'zoo' has no attribute {name!r}")
    # In Jupyter, tqdm warns on import that ipywidgets are missing; zoo's progress bars are Rich's, not tqdm's.
    warnings.filterwarnings("ignore", message="IProgress not found")
    return getattr(importlib.import_module(_WHERE[name]), name)  # PEP 562: the module loads on first use


def __dir__() -> list[str]:
    return sorted([*globals(), *_WHERE])


_one_line_errors_in_ipython()
