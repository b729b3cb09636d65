"""The results store and its aggregation into tables.

Store layout under one folder (e.g. `results/quick/`):
- `runs/<hash>.json`: one record per finished run (ok or failed), written atomically and
  last, so a killed sweep leaves whole records or none; a sweep skips stored hashes;
- `packs/<digest>.jsonl.gz`: records packed for the repository (`ffr pack`): one JSON record
  a line, gzip at a fixed mtime (the same records give the same bytes), named by a digest of
  their hashes; read as if they were loose records, a loose record winning over a packed one.
  The paper-scale stores commit packs (~0.7 KB a record instead of ~4 KB of loose JSON);
- `checkpoints/<hash>.pt`: final (best-epoch) weights of runs others depend on (FFR stage 1,
  the ERM bases of DFR), written atomically;
- `runs.jsonl`: an index of all records, rewritten (atomically) at the end of each sweep
  (derived; git-ignored).
Aggregation: `frame()` flattens records into one row per run; `aggregate` gives mean, std and
a seeded percentile-bootstrap interval over seeds per cell.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from .io import atomic_write_bytes, atomic_write_text

EVAL_SETS = {"val": "val", "test": "test", "test_synthetic": "synth"}  # record key -> column prefix
SUMMARY = ("wa", "ba", "avg", "wca", "acc")


class ResultStore:
    """Run records and checkpoints in one folder."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        self.runs = self.folder / "runs"
        self.packs = self.folder / "packs"
        self.checkpoints = self.folder / "checkpoints"
        self._packed: dict[str, dict] | None = None  # hash -> record of every pack, read on first use

    def __repr__(self) -> str:
        return f"ResultStore({str(self.folder)!r})"

    # -- records -----------------------------------------------------------------------
    def record_path(self, run_hash: str) -> Path:
        return self.runs / f"{run_hash}.json"

    def packed(self) -> dict[str, dict]:
        """Every packed record by hash (read once; `pack` refreshes it)."""
        if self._packed is None:
            self._packed = {}
            for path in sorted(self.packs.glob("*.jsonl.gz")) if self.packs.is_dir() else ():
                with gzip.open(path, "rt") as fh:
                    for line in fh:
                        if line.strip():
                            record = json.loads(line)
                            self._packed[record["hash"]] = record
        return self._packed

    def has(self, run_hash: str) -> bool:
        return self.record_path(run_hash).is_file() or run_hash in self.packed()

    def get(self, run_hash: str) -> dict:
        path = self.record_path(run_hash)
        try:
            return json.loads(path.read_text())
        except FileNotFoundError:
            if run_hash in self.packed():
                return self.packed()[run_hash]
            raise KeyError(f"no record {run_hash} in {self.runs} or {self.packs}") from None

    def write(self, record: dict) -> Path:
        """Store `record` (needs 'hash') atomically; replaces an older record of the same hash."""
        if "hash" not in record:
            raise ValueError("a run record needs its 'hash'")
        text = json.dumps(record, sort_keys=True, default=_jsonable)
        return atomic_write_text(self.record_path(record["hash"]), text + "\n")

    def loose(self) -> set[str]:
        """Hashes of the records written since the last `pack`."""
        return {p.stem for p in self.runs.glob("*.json")} if self.runs.is_dir() else set()

    def hashes(self) -> set[str]:
        return self.loose() | set(self.packed())

    def pack(self) -> Path | None:
        """Move every loose record into one new pack (written atomically before the loose files
        go, so a kill loses nothing: a record both loose and packed reads the same); None when
        nothing is loose. A loose record replacing a packed one of the same hash drops the old."""
        loose = sorted(self.loose())
        if not loose:
            return None
        records = [self.get(h) for h in loose]
        text = "".join(json.dumps(r, sort_keys=True, separators=(",", ":"), default=_jsonable) + "\n" for r in records)
        buf = io.BytesIO()
        with gzip.GzipFile(fileobj=buf, mode="wb", compresslevel=9, mtime=0) as gz:
            gz.write(text.encode())
        digest = hashlib.sha1("".join(loose).encode()).hexdigest()[:12]
        path = atomic_write_bytes(self.packs / f"{digest}.jsonl.gz", buf.getvalue())
        replaced = set(loose) & set(self.packed())
        if replaced:  # rewrite the older packs without the records now replaced
            self._drop_from_packs(replaced, keep=path)
        for h in loose:
            self.record_path(h).unlink()
        self._packed = None
        return path

    def _drop_from_packs(self, hashes: set[str], keep: Path) -> None:
        for old in sorted(self.packs.glob("*.jsonl.gz")):
            if old == keep:
                continue
            with gzip.open(old, "rt") as fh:
                lines = [line for line in fh if line.strip() and json.loads(line)["hash"] not in hashes]
            buf = io.BytesIO()
            with gzip.GzipFile(fileobj=buf, mode="wb", compresslevel=9, mtime=0) as gz:
                gz.write("".join(lines).encode())
            if lines:
                atomic_write_bytes(old, buf.getvalue())
            else:
                old.unlink()

    def records(self) -> list[dict]:
        """All records, sorted by hash (a stable order)."""
        return [self.get(h) for h in sorted(self.hashes())]

    def write_index(self) -> Path:
        """`runs.jsonl`: every record on one line, sorted by hash."""
        lines = [json.dumps(r, sort_keys=True, default=_jsonable) for r in self.records()]
        return atomic_write_text(self.folder / "runs.jsonl", "".join(line + "\n" for line in lines))

    # -- checkpoints -------------------------------------------------------------------
    def checkpoint_path(self, run_hash: str) -> Path:
        return self.checkpoints / f"{run_hash}.pt"

    def save_checkpoint(self, run_hash: str, state: dict) -> Path:
        buf = io.BytesIO()
        torch.save({k: v.detach().cpu() for k, v in state.items()}, buf)
        return atomic_write_bytes(self.checkpoint_path(run_hash), buf.getvalue())

    def load_checkpoint(self, run_hash: str) -> dict | None:
        path = self.checkpoint_path(run_hash)
        return torch.load(path, map_location="cpu", weights_only=True) if path.is_file() else None

    # -- tables ------------------------------------------------------------------------
    def frame(self, status: str | None = "ok") -> pd.DataFrame:
        return records_frame(self.records(), status=status)


def load_jsonl(path: str | Path) -> list[dict]:
    """Records from a `runs.jsonl` index (or any file of one JSON record per line)."""
    with open(path) as fh:
        return [json.loads(line) for line in fh if line.strip()]


def _jsonable(obj):
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"cannot store {type(obj).__name__} in a run record")


def flatten(record: dict) -> dict:
    """One table row: config fields, then `<set>_<metric>` and `<set>_<group>` columns."""
    row = {"hash": record["hash"], "status": record.get("status", "ok")}
    row.update({k: v for k, v in record["config"].items() if k not in ("data", "hparams")})
    row["data"] = json.dumps(record["config"].get("data", []))
    row.update({f"hp_{k}": v for k, v in (record["config"].get("hparams") or {}).items()})  # a method's own
    for key, prefix in EVAL_SETS.items():
        metrics = record.get(key)
        if not metrics:
            continue
        for m in SUMMARY:
            if m in metrics:
                row[f"{prefix}_{m}"] = metrics[m]
        for g, acc in metrics.get("groups", {}).items():
            row[f"{prefix}_{g}"] = acc
    for k in ("best_epoch", "seconds", "device", "threads"):
        if k in record:
            row[k] = record[k]
    history = record.get("history") or []
    if history:
        best = record.get("best_epoch")
        if best and 1 <= best <= len(history) and "val_loss" in history[best - 1]:
            row["val_loss"] = history[best - 1]["val_loss"]  # the selection chain's third key
        # validation WA 0 at every epoch: the best epoch was chosen by the later keys alone
        row["degenerate"] = all(h.get("val_wa", 0) == 0 for h in history)
    return row


def records_frame(records: Iterable[dict], status: str | None = "ok") -> pd.DataFrame:
    """Flattened records as a DataFrame (only those with `status`; None keeps all)."""
    rows = [flatten(r) for r in records if status is None or r.get("status", "ok") == status]
    return pd.DataFrame(rows)


def bootstrap_ci(values: Sequence[float], n_boot: int = 1000, level: float = 0.95, seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of `values` (resampled with replacement)."""
    x = np.asarray(values, dtype=float)
    if len(x) == 0:
        raise ValueError("bootstrap of no values")
    rng = np.random.default_rng(seed)
    means = x[rng.integers(0, len(x), size=(n_boot, len(x)))].mean(axis=1)
    alpha = (1 - level) / 2
    return float(np.quantile(means, alpha)), float(np.quantile(means, 1 - alpha))


def aggregate(
    df: pd.DataFrame,
    by: Sequence[str],
    metrics: Sequence[str] = ("test_wa", "test_ba"),
    n_boot: int = 1000,
    seed: int = 0,
) -> pd.DataFrame:
    """Per group of `by`: n (seeds), and for each metric its mean, std (ddof 1; NaN for one seed)
    and a 95 % bootstrap interval over the rows (ci_lo, ci_hi), in the metric's units."""
    missing = [c for c in (*by, *metrics) if c not in df.columns]
    if missing:
        raise KeyError(f"aggregate: no column(s) {', '.join(missing)}; have {', '.join(map(str, df.columns))}")
    rows = []
    for key, part in df.groupby(list(by), sort=True, dropna=False):
        key = key if isinstance(key, tuple) else (key,)
        row = dict(zip(by, key))
        row["n"] = len(part)
        for m in metrics:
            values = part[m].to_numpy(dtype=float)
            lo, hi = bootstrap_ci(values, n_boot=n_boot, seed=seed)
            row.update({f"{m}_mean": values.mean(), f"{m}_std": values.std(ddof=1) if len(values) > 1 else np.nan})
            row.update({f"{m}_ci_lo": lo, f"{m}_ci_hi": hi})
        rows.append(row)
    return pd.DataFrame(rows)
