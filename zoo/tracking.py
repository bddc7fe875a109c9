"""Experiment tracking: Weights & Biases by default, offline unless the user is logged in or asks otherwise."""

from __future__ import annotations

import netrc
import os
import sys
from pathlib import Path
from typing import Any

from zoo.console import wandb_silent
from zoo.errors import Interrupted, ZooError
from zoo.internals import replace_once, without_wandb_anonymous

MODES = ("auto", "online", "offline", "disabled")


def wandb_mode(mode: str = "auto") -> str:
    """``auto``: WANDB_MODE if set, online with an API key or a ``wandb login`` entry in ~/.netrc, else offline."""
    if mode not in MODES:
        raise ZooError(f"logger.wandb.mode={mode!r} is not valid; choose one of {', '.join(MODES)}")
    if mode != "auto":
        return mode
    if os.environ.get("WANDB_MODE"):
        return os.environ["WANDB_MODE"]
    if os.environ.get("WANDB_API_KEY"):
        return "online"
    try:
        netrc_file = Path(os.environ.get("NETRC", Path.home() / ".netrc"))
        if netrc_file.is_file() and netrc.netrc(netrc_file).authenticators("api.wandb.ai"):
            return "online"
    except (OSError, netrc.NetrcParseError):
        pass
    return "offline"


def wandb_logger(mode: str = "auto", **kwargs: Any):
    """A Lightning WandbLogger whose mode is chosen by :func:`wandb_mode`; other arguments go to ``wandb.init``."""
    from lightning.pytorch.loggers import WandbLogger

    resolved = wandb_mode(mode)
    return without_wandb_anonymous(WandbLogger(offline=resolved == "offline", mode=resolved, **kwargs))


def start_logging(logger: Any, config: dict[str, Any]) -> None:
    """Give ``logger`` the run's config: a W&B logger starts its run here. W&B refusing to start (an online run
    with no login and no terminal to ask for one on, a server out of reach) is one line naming the ways out."""
    from lightning.pytorch.loggers import WandbLogger

    if isinstance(logger, WandbLogger):
        skip_unstaged_launch_inputs()
        skip_pandas_until_imported()
        poll_service_often()
        read_each_package_once()
    try:
        logger.log_hyperparams(config)
    except Exception as err:
        wandb = sys.modules.get("wandb")
        if wandb is None or not isinstance(err, wandb.errors.Error):
            raise
        why = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise ZooError(
            f"W&B could not start the run ({why}); log in with `wandb login` (or set WANDB_API_KEY), or log offline "
            "with logger.wandb.mode=offline and upload later with `wandb sync`"
        ) from None


LAUNCH_INPUTS = "wandb.sdk.launch.inputs.internal"  # where W&B Launch stages a job's inputs
SERVICE_POLL = 0.005  # seconds between looks for W&B's service port file (W&B's own: 0.2)


def skip_unstaged_launch_inputs() -> None:
    """``wandb.init`` applies the inputs W&B Launch staged for the run, importing W&B's public API to look for
    them (about a second of a short run). Inputs are staged only through that module: where it was never
    imported there is nothing to apply, and ``wandb.init`` skips the look."""
    from wandb.sdk.wandb_run import Run

    def wrap(apply: Any) -> Any:
        def apply_staged(run: Any) -> None:
            if LAUNCH_INPUTS in sys.modules:
                apply(run)

        return apply_staged

    replace_once(Run, "_detect_and_apply_job_inputs", wrap)


def skip_pandas_until_imported() -> None:
    """W&B asks of every value a run logs whether it is a pandas DataFrame, importing pandas to ask (a fifth of a
    second of a short run that never uses it). Where pandas was never imported no value can be one: the answer is
    no, without the import; once pandas is in, W&B asks as before."""
    from wandb import util

    def wrap(ask: Any) -> Any:
        def is_pandas_data_frame(obj: Any) -> bool:
            return "pandas" in sys.modules and ask(obj)

        return is_pandas_data_frame

    replace_once(util, "is_pandas_data_frame", wrap)


def poll_service_often() -> None:
    """``wandb.init`` starts W&B's service process and looks for the port file it writes every 0.2 s. The service
    writes it within about 25 ms, so the first look misses and the run waits the rest of the 0.2 s; here it looks
    every 5 ms, with W&B's own timeout."""
    from wandb.sdk.lib.service import service_port_file

    def wrap(sleep: Any) -> Any:
        def sleep_briefly(seconds: float) -> None:
            sleep(min(seconds, SERVICE_POLL))

        return sleep_briefly

    replace_once(service_port_file, "_SLEEP", wrap)


def read_each_package_once() -> None:
    """``wandb.init`` lists the installed packages for the run's requirements (``wandb.util.working_set``), parsing
    each one's whole METADATA file twice, for its name and then for its version: a tenth of a second for the 214
    packages of zoo's environment. Here each file's header, where both are, is parsed once: the same list."""
    from email.parser import HeaderParser
    from importlib.metadata import distributions

    from wandb import util

    listed = getattr(util, "InstalledDistribution", None)  # what W&B's own list holds
    if listed is None:
        return

    def wrap(_: Any) -> Any:
        def working_set() -> Any:
            for dist in distributions():
                text = dist.read_text("METADATA") or dist.read_text("PKG-INFO") or ""
                header = HeaderParser().parsestr(text.split("\n\n", 1)[0])
                if header["Name"] is not None and header["Version"] is not None:
                    yield listed(key=header["Name"], version=header["Version"])

        return working_set

    replace_once(util, "working_set", wrap)


def finish_wandb(exit_code: int = 0) -> None:
    """Close the W&B run, so that the next job of a multirun starts its own. Ctrl-C while W&B sends what it has
    left is one line naming the folder that ``wandb sync`` uploads later (after the message of a training run
    that Ctrl-C or SIGTERM stopped first, if one did), exit 130. Where W&B keeps quiet, one line says where the
    run went (none with ``logger.wandb.mode=disabled``: nothing went anywhere)."""
    wandb = sys.modules.get("wandb")
    run = getattr(wandb, "run", None)
    if run is None:
        return
    folder = run.settings.sync_dir
    upload = f"upload it with `wandb sync {folder}`"
    offline = run.settings.mode in ("offline", "dryrun")  # a second run in one process reads "dryrun"
    where = f"offline in {folder}; {upload}" if offline else str(run.url or folder)
    disabled = run.settings.mode == "disabled"  # no run at all: its sync_dir is a folder W&B never writes
    try:
        wandb.finish(exit_code=exit_code)
        if wandb_silent() and exit_code == 0 and not disabled:
            print(f"W&B run: {where}")
    except KeyboardInterrupt as err:
        first = err.__context__  # what was on its way out when W&B was asked to close, if anything
        while first is not None and not isinstance(first, Interrupted):
            first = first.__context__
        raise Interrupted(
            f"{f'{first}; then ' if first else ''}interrupted while W&B was closing the run: what it had not uploaded "
            f"stays in {folder}; {upload}",
            exit_code=130,
        ) from None
