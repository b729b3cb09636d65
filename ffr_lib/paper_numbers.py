"""The paper's own numbers (paper_numbers.yaml, transcribed from TARGETS.md), as tables.

They stand beside our results for the datasets we cannot run here (CelebA-HQ, UTK-Face, SpuCo
Animals) and are always labelled with their source ("paper (ECCV)", "paper (ICLR)"); nothing
here reads or writes the results store, so the two are never mixed.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import yaml

NUMBERS_FILE = Path(__file__).with_name("paper_numbers.yaml")


def load_numbers(path: str | Path = NUMBERS_FILE) -> dict[str, dict]:
    """name -> {source, title, dataset?, rows: [...]} as stored."""
    data = yaml.safe_load(Path(path).read_text())
    for name, entry in data.items():
        for key in ("source", "title", "rows"):
            if key not in entry:
                raise ValueError(f"{path}: table {name!r} has no {key!r}")
        if not str(entry["source"]).startswith("paper ("):
            raise ValueError(f"{path}: table {name!r}: source must read 'paper (...)', got {entry['source']!r}")
    return data


def paper_table(name: str, path: str | Path = NUMBERS_FILE) -> pd.DataFrame:
    """One table of the paper: a `source` column first, then its rows (wa, ba in percent as
    printed). Unknown names raise an error listing the known ones."""
    numbers = load_numbers(path)
    if name not in numbers:
        raise KeyError(f"no paper table {name!r} in {path}; known: {', '.join(sorted(numbers))}")
    entry = numbers[name]
    df = pd.DataFrame(entry["rows"])
    if "dataset" not in df.columns and "dataset" in entry:
        df.insert(0, "dataset", entry["dataset"])
    df.insert(0, "source", entry["source"])
    return df


def iclr_table1_wide(path: str | Path = NUMBERS_FILE) -> pd.DataFrame:
    """ICLR table 1 as printed: one row per (method, mode), 'WA/BA' per dataset."""
    df = paper_table("iclr_table1", path)
    df["wa/ba"] = df["wa"].map("{:.1f}".format) + "/" + df["ba"].map("{:.1f}".format)
    wide = df.pivot_table(index=["method", "mode"], columns="dataset", values="wa/ba", aggfunc="first", sort=False)
    wide = wide.reset_index()
    wide.insert(0, "source", "paper (ICLR), bias 99.9 %")
    wide.columns.name = None
    return wide
