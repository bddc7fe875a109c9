"""Every notebook in notebooks/ runs top to bottom in a Jupyter kernel, offline, each training cut to two epochs
(ZOO_FAST=1): a cell that raises fails the suite. ``make notebooks`` runs them in full and keeps the outputs."""

from __future__ import annotations

import pytest

from tests.conftest import ROOT

NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.py"))


def test_there_is_a_notebook_per_chapter():
    assert len(NOTEBOOKS) == 6


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_a_notebook_runs_top_to_bottom(path, tmp_path, monkeypatch):
    import jupytext
    from nbclient import NotebookClient

    monkeypatch.setenv("ZOO_FAST", "1")
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    notebook = jupytext.read(path)
    NotebookClient(
        notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    ).execute()
    cells = [cell for cell in notebook.cells if cell.cell_type == "code"]
    shown = [o for cell in cells for o in cell.get("outputs", [])]
    assert any("image/png" in o.get("data", {}) or "text/html" in o.get("data", {}) for o in shown)  # figures
    for cell in cells:  # a cell that shows a mistake on purpose shows the one-line error, and only there
        errors = [o.text for o in cell.get("outputs", []) if o.output_type == "stream" and "ZooError:" in o.text]
        expected = "raises-exception" in cell.metadata.get("tags", [])
        assert bool(errors) == expected, (cell.source, errors)
        assert all(e.strip().count("\n") == 0 for e in errors)
