"""User-facing errors: one clear line, a non-zero exit, no traceback unless HYDRA_FULL_ERROR=1."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any


class ZooError(Exception):
    """A mistake in the user's config or data; the message names the problem and the fix. The script exits with
    ``exit_code`` (2; 128 + the signal's number for a run stopped by Ctrl-C or SIGTERM)."""

    def __init__(self, message: str, exit_code: int = 2) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class Interrupted(ZooError):
    """A run stopped by Ctrl-C or SIGTERM (its checkpoint saved when training was under way): in a multirun the
    whole search stops too."""


def one_line_errors_in_ipython() -> None:
    """In IPython and Jupyter, a ZooError shows as its one line, as the scripts print it, not as a traceback (set as
    ``import zoo`` runs, so a mistake in the first cell already reads so)."""
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    if shell is None:
        return

    def show(shell: Any, etype: type, value: BaseException, tb: Any, tb_offset: Any = None) -> list[str]:
        print(f"ZooError: {value}", file=sys.stderr)
        return []

    shell.set_custom_exc((ZooError,), show)


def report_user_errors(fn: Callable[..., Any], *args: Any) -> Any:
    """Call ``fn``; turn a ZooError (or Lightning's configuration error) into ``error: ...`` and exit 2 (or the
    error's ``exit_code``). A Hydra run refused before it claimed its folder leaves no folder behind."""
    start = _run_folder_at_start()
    try:
        return fn(*args)
    except Exception as err:
        if os.environ.get("HYDRA_FULL_ERROR") == "1" or not _is_user_error(err):
            raise
        if start is not None:
            folder, log, fresh = start
            if (fresh and {p.name for p in folder.iterdir()} <= {log}) or _no_lines(folder / log):
                (folder / log).unlink(missing_ok=True)  # refused before it wrote anything, or a line to its log
                _remove_empty(folder)  # where nothing else is in it: a folder an earlier run used is kept
        print(f"error: {err}", file=sys.stderr)
        sys.exit(getattr(err, "exit_code", 2))


def _run_folder_at_start() -> tuple[Path, str, bool] | None:
    """This run's folder, the log Hydra opens in it, and whether the folder is fresh (nothing but that log, still
    empty), where the log has no line yet. A run refused at its start removes a fresh folder with its log (the
    error is on stderr); from a folder the user or an earlier run filled, only the log, where it is still empty."""
    try:
        from hydra.core.hydra_config import HydraConfig

        hydra = HydraConfig.get()
        folder, log = Path(hydra.runtime.output_dir), f"{hydra.job.name}.log"
    except Exception:  # not a Hydra run (compose API, argparse scripts)
        return None
    if not folder.is_dir() or not _no_lines(folder / log):
        return None
    return folder, log, {p.name for p in folder.iterdir()} <= {log}


def _no_lines(log: Path) -> bool:
    """The log holds nothing: still empty, or not yet opened."""
    return not log.exists() or (log.is_file() and log.stat().st_size == 0)


def _remove_empty(folder: Path) -> None:
    """``folder`` and, where that leaves them empty, the folders Hydra made above it (``<log_dir>/<name>/runs``,
    three at most); the working directory and the folders above it are never touched."""
    keep = {Path.cwd(), *Path.cwd().parents}
    for path in [folder, *list(folder.parents)[:3]]:
        if path in keep or any(path.iterdir()):
            return
        path.rmdir()


def _is_user_error(err: Exception) -> bool:
    if isinstance(err, ZooError):
        return True
    return type(err).__name__ == "MisconfigurationException"
