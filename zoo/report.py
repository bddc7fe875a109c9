"""What a task or callback hands the run folder's writer (``zoo.outputs.RunFolder``): figures to draw and tables to
write, as data. Only the writer decides where they go and writes them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Figure:
    """A figure to draw: a ``zoo.plots`` function, called as ``draw(*args, path, **kwargs)``."""

    draw: Callable[..., Any]
    args: tuple = ()
    kwargs: dict[str, Any] = field(default_factory=dict)


@dataclass
class Table:
    """A table: written as CSV in the run folder, and logged to W&B as a table where W&B tracks the run."""

    columns: list[str]
    rows: list[list[Any]]
