"""What a task or callback hands the run folder's writer (``zoo.outputs.RunFolder``): figures to draw and tables to
write, as data. Only the writer decides where they go and writes them."""

from __future__ import annotations

import string
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Figure:
    """A figure to draw: a ``zoo.plots`` function, called as ``draw(*args, path, **kwargs)``."""

    draw: Callable[..., Any]
    args: tuple = ()
    kwargs: dict[str, Any] = field(default_factory=dict)
    suffix: str = "png"  # gif: an animation


@dataclass
class Table:
    """A table: written as CSV in the run folder, and logged to W&B as a table where W&B tracks the run."""

    columns: list[str]
    rows: list[list[Any]]


@dataclass
class Arrays:
    """Numbers a figure was drawn from, for a later figure to read (a search draws every job's path on one loss
    surface): written as ``<name>.npz``."""

    arrays: dict[str, Any]


class _Unknown:
    """A value the run did not produce: shown as ``n/a`` whatever its format (``{test_acc:.4f}``)."""

    def __format__(self, spec: str) -> str:
        return "n/a"


class _Values(dict):
    def __missing__(self, key: str) -> _Unknown:
        return _Unknown()


def summary_text(template: str, values: Mapping[str, Any]) -> str:
    """An experiment's ``summary`` with the run's numbers filled in (``{test_acc:.4f}``: ``test/acc`` in
    ``metrics.json``); a number the run did not produce reads ``n/a`` rather than stopping the run at its end."""
    return string.Formatter().vformat(template, (), _Values(values)).strip()
