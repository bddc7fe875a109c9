"""User-facing errors: one clear line, a non-zero exit, no traceback unless HYDRA_FULL_ERROR=1."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Any


class ZooError(Exception):
    """A mistake in the user's config or data; the message names the problem and the fix. The script exits with
    ``exit_code`` (2; 128 + the signal's number for a run stopped by Ctrl-C or SIGTERM)."""

    def __init__(self, message: str, exit_code: int = 2) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def report_user_errors(fn: Callable[..., Any], *args: Any) -> Any:
    """Call ``fn``; turn a ZooError (or Lightning's configuration error) into ``error: ...`` and exit 2 (or the
    error's ``exit_code``)."""
    try:
        return fn(*args)
    except Exception as err:
        if os.environ.get("HYDRA_FULL_ERROR") == "1" or not _is_user_error(err):
            raise
        print(f"error: {err}", file=sys.stderr)
        sys.exit(getattr(err, "exit_code", 2))


def _is_user_error(err: Exception) -> bool:
    if isinstance(err, ZooError):
        return True
    return type(err).__name__ == "MisconfigurationException"
