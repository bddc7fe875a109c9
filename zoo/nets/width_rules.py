"""Rules of thumb for the number of hidden units of an MLP, from the slides of Redes Neurais e Deep Learning (Deepa,
2013; Hagan, 2014).

Each rule maps ``Ni`` inputs, ``No`` outputs, ``Ns`` training samples and ``L`` hidden layers to a width. Xu & Chen
and Fujita are left out: they need problem-specific constants the slides do not give.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from zoo.errors import ZooError

if TYPE_CHECKING:
    from zoo.spec import DataSpec

MAX_UNITS = 100_000

# name -> (formula as the slides print it, function of (Ni, No, Ns, L, alpha))
RULES: dict[str, tuple[str, Callable[[int, int, int, int, float], float]]] = {
    "hagan": ("Nh = Ns / (alpha * (Ni + No))", lambda ni, no, ns, L, a: ns / (a * (ni + no))),
    "li": ("Nh = (sqrt(1 + 8 Ni) - 1) / 2", lambda ni, no, ns, L, a: (math.sqrt(1 + 8 * ni) - 1) / 2),
    "tamura_tateishi": ("Nh = Ns - 1", lambda ni, no, ns, L, a: ns - 1),
    "zhang": ("Nh = 2^Ni / (Ni + 1)", lambda ni, no, ns, L, a: 2.0**ni / (ni + 1)),
    "jinchuan_xinzhe": ("Nh = (Ni + sqrt(Ns)) / L", lambda ni, no, ns, L, a: (ni + math.sqrt(ns)) / L),
    "shibata_ikeda": ("Nh = sqrt(Ni * No)", lambda ni, no, ns, L, a: math.sqrt(ni * no)),
    "hunter": ("Nh = 2^Ni - 1", lambda ni, no, ns, L, a: 2.0**ni - 1),
    "deepa": ("Nh = (4 Ni^2 + 3) / (Ni^2 - 8)", lambda ni, no, ns, L, a: (4 * ni**2 + 3) / abs(ni**2 - 8)),
    "between_io": ("Nh = (Ni + No) / 2, between input and output sizes", lambda ni, no, ns, L, a: (ni + no) / 2),
    "two_thirds": ("Nh = 2/3 Ni + No", lambda ni, no, ns, L, a: 2 * ni / 3 + no),
    "under_twice_input": ("Nh = 2 Ni - 1, below twice the input size", lambda ni, no, ns, L, a: 2 * ni - 1),
}


def hidden_units(rule: str, n_in: int, n_out: int, n_train: int, n_layers: int = 1, alpha: float = 2.0) -> int:
    """Width given by ``rule``, rounded to the nearest integer and at least 1."""
    if rule not in RULES:
        raise ZooError(f"unknown width rule {rule!r}; choose an integer or one of: {', '.join(RULES)}")
    formula, fn = RULES[rule]
    try:
        units = fn(n_in, n_out, n_train, n_layers, alpha)
    except OverflowError:
        units = math.inf
    if units > MAX_UNITS:
        raise ZooError(
            f"width rule {rule!r} ({formula}) gives {units:.3g} units for Ni={n_in}; "
            "choose another rule or an integer width"
        )
    return max(1, round(units))


def widths_for(spec: DataSpec, out_features: int, hidden: Any, alpha: float = 2.0) -> list[int]:
    """``hidden`` (one width, or a list of widths and rule names) as integers for this data and output size."""
    hidden = list(hidden) if isinstance(hidden, list | tuple) else [hidden]
    return resolve_widths(hidden, spec.num_features, out_features, spec.num_train, alpha)


def resolve_widths(hidden: list[int | str], n_in: int, n_out: int, n_train: int, alpha: float = 2.0) -> list[int]:
    """Replace rule names in a list of hidden sizes by the widths they give."""
    return [w if isinstance(w, int) else hidden_units(str(w), n_in, n_out, n_train, len(hidden), alpha) for w in hidden]
