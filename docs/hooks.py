"""Pages written from the code itself, so that they cannot drift from it: the configuration reference (from ``conf/``)
and each script's ``--help``."""

from __future__ import annotations

import re

from zoo.cli import config_reference, help_text

MARKER = re.compile(r"<!-- (config-reference|help:(\w+)) -->")


def on_page_markdown(markdown: str, **_: object) -> str:
    def fill(match: re.Match) -> str:
        if match.group(1) == "config-reference":
            return config_reference()
        return f"```text\n{help_text(match.group(2)).rstrip()}\n```"

    return MARKER.sub(fill, markdown)
