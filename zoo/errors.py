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
    fresh = _fresh_run_folder()
    try:
        return fn(*args)
    except Exception as err:
        if os.environ.get("HYDRA_FULL_ERROR") == "1" or not _is_user_error(err):
            raise
        if fresh is not None and _still_empty(fresh[0] / fresh[1]):  # refused before it logged a line
            (fresh[0] / fresh[1]).unlink()
            _remove_empty(fresh[0])  # where nothing else is in it: a folder an earlier run used is kept
        print(f"error: {err}", file=sys.stderr)
        sys.exit(getattr(err, "exit_code", 2))


def _fresh_run_folder() -> tuple[Path, str] | None:
    """This run's folder and the log Hydra opened in it, where the log is still empty: a run refused at its start
    removes the empty log (the error is on stderr) and the folder if nothing else is in it, so a folder an earlier
    run or the user filled is left as it was."""
    try:
        from hydra.core.hydra_config import HydraConfig

        hydra = HydraConfig.get()
        folder, log = Path(hydra.runtime.output_dir), f"{hydra.job.name}.log"
    except Exception:  # not a Hydra run (compose API, argparse scripts)
        return None
    return (folder, log) if _still_empty(folder / log) else None


def _still_empty(path: Path) -> bool:
    try:
        return path.stat().st_size == 0
    except OSError:
        return False


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
