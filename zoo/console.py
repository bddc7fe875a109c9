"""What reaches the terminal. zoo keeps off the screen the third-party messages it knows say nothing to a user of
zoo; a real warning always shows. ``verbose=true`` (or ``-v`` on a script's command line) shows everything.

Kept free of third-party imports: the scripts call :func:`quiet` before anything heavy is imported.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import warnings
from collections.abc import Iterator

# INFO lines of libraries zoo uses: numexpr's thread count (on importing pandas), matplotlib's font cache (built once
# per machine), alembic's schema steps (Optuna's study storage)
QUIET_LOGGERS = ("numexpr", "matplotlib", "alembic")

# Warnings that do not apply to how zoo runs Lightning
IRRELEVANT_WARNINGS = (
    r".*does not have many workers.*",  # in-memory batches are slices of tensors: no loader workers to add
    r".*smaller than the logging interval.*",  # the fast path hands Lightning few, large steps
    r".*this fit will run with no optimizer.*",  # a closed-form fit (the ELM) has none
    r".*LeafSpec.*",  # torch's pytree deprecation inside Lightning
    r".*The dirpath has changed from.*",  # a resumed run keeps its checkpoints in its own new folder, by design
    r"Argument ``(multivariate|group)`` is an experimental feature.*",  # Optuna's TPE in hparams_search=auto
)


def quiet(verbose: bool = False) -> None:
    """Silence what :data:`QUIET_LOGGERS` and :data:`IRRELEVANT_WARNINGS` name, and W&B's own report (zoo prints one
    line about the run instead), unless ``verbose``. Where the output is not a terminal (a CI log, a file), no
    library writes colour codes into it (``NO_COLOR``, which Rich and colorlog honour)."""
    if not sys.stderr.isatty():
        os.environ.setdefault("NO_COLOR", "1")
    if verbose:
        os.environ.setdefault("WANDB_SILENT", "false")
        return
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    for message in IRRELEVANT_WARNINGS:
        warnings.filterwarnings("ignore", message=message)
    os.environ.setdefault("WANDB_SILENT", "true")


@contextlib.contextmanager
def logger_level(name: str, level: int) -> Iterator[None]:
    """Inside the block the logger ``name`` says only what is ``level`` or worse; its own level again after it."""
    logger = logging.getLogger(name)
    before = logger.level
    logger.setLevel(level)
    try:
        yield
    finally:
        logger.setLevel(before)


def wandb_silent() -> bool:
    """Whether W&B keeps quiet (zoo then says in one line where the run's data went)."""
    return os.environ.get("WANDB_SILENT", "").lower() in ("1", "true", "yes")
