"""Run the notebooks in full and keep their outputs, for reading: ``python scripts/render_notebooks.py [NAME ...]``
writes ``notebooks/rendered/<name>.ipynb`` (run folders land in ``notebooks/rendered/logs``). ``make notebooks``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    names = sorted(p.stem for p in NOTEBOOKS.glob("*.py"))
    parser.add_argument("names", nargs="*", help=f"which notebooks (default: all): {', '.join(names)}")
    args = parser.parse_args()
    unknown = [n for n in args.names if n not in names]
    if unknown:
        parser.error(f"no notebook {', '.join(unknown)}; choose from {', '.join(names)}")

    import jupytext
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    out = NOTEBOOKS / "rendered"
    out.mkdir(exist_ok=True)
    for name in args.names or names:
        notebook = jupytext.read(NOTEBOOKS / f"{name}.py")
        print(f"running notebooks/{name}.py", flush=True)
        try:
            NotebookClient(
                notebook, timeout=3600, kernel_name="python3", resources={"metadata": {"path": str(out)}}
            ).execute()
        except CellExecutionError as err:
            print(f"error: notebooks/{name}.py: a cell failed:\n{err}", file=sys.stderr)
            sys.exit(1)
        nbformat.write(notebook, out / f"{name}.ipynb")
        print(f"  -> {out / f'{name}.ipynb'}")


if __name__ == "__main__":
    main()
