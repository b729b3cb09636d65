"""One line per GPU slice into results/<profile>/slices.tsv: when, which card, which commit, the
sweep's arguments, its exit status, wall seconds, how many records it brought, and its share of
the card: `concurrent` slices ran in one call (once, in session 12: docs/performance.md, "How the
evidence runs proceed"; the log's line "call: N slices in S s, card share C s"), and `card_s` is
this slice's share of that call's wall (its wall where it ran alone). The grids' measured GPU
time is the sum of `card_s` (issue #21). `synthetic`: the synthetic sets on disk the slice could
read (generator 'disk', the composite profiles), each as folder:digest of its manifest. Called by scripts/import_slice.sh:

    python scripts/slice_log.py FILES_AT PROFILE
"""

from __future__ import annotations

import csv
import json
import re
import sys
import tarfile
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COLUMNS = ("imported_at", "gpu", "commit", "exit", "wall_s", "records", "args", "concurrent", "card_s", "synthetic")
EXIT = re.compile(r"sweep exit (\d+) after (\d+) s: (.*)$")  # a slice cut by its timeout leaves tqdm's bar before it
RECORDS = re.compile(r"^(\d+) records in runs\.tgz$")
CALL = re.compile(r"^call: (\d+) slices in (\d+) s, card share (\d+) s$")
SET = re.compile(r"^synthetic set (\S+)/manifest\.csv: sha1 ([0-9a-f]+)$")  # sets on disk (generator 'disk')


def _commit(runs: Path) -> str:
    """The commit of the slice's newest record (the copy on the GPU has no .git; records a sweep
    copied from a store it shares name the older commit that trained them)."""
    if not runs.is_file():
        return ""
    newest = ("", "")
    with tarfile.open(runs) as tar:
        for member in tar:
            if member.isfile() and member.name.endswith(".json"):
                record = json.load(tar.extractfile(member))
                newest = max(newest, (str(record.get("finished_at", "")), str(record.get("commit", ""))))
    return newest[1][:12]


def parse(files_at: Path) -> dict:
    """The slice's line from its sweep.log and gpu.txt; exits 2 with one line if they lack it."""
    log = files_at / "sweep.log"
    if not log.is_file():
        raise SystemExit(f"slice_log: {log}: no such file")
    row = {"gpu": "", "commit": "", "exit": "", "wall_s": "", "records": "", "args": "", "concurrent": "1", "card_s": "",
           "synthetic": ""}
    sets = []
    for line in log.read_text(errors="replace").splitlines():
        if m := EXIT.search(line.strip()):
            row.update(exit=m[1], wall_s=m[2], args=m[3])
        elif m := RECORDS.match(line.strip()):
            row["records"] = m[1]
        elif m := CALL.match(line.strip()):
            row.update(concurrent=m[1], card_s=m[3])
        elif m := SET.match(line.strip()):
            sets.append(f"{m[1]}:{m[2]}")
    row["synthetic"] = " ".join(sets)
    if not row["wall_s"]:
        raise SystemExit(f"slice_log: {log}: no 'sweep exit N after S s: ARGS' line (was the slice cut?)")
    row["card_s"] = row["card_s"] or row["wall_s"]
    row["commit"] = _commit(files_at / "runs.tgz")
    gpu = files_at / "gpu.txt"
    if gpu.is_file():
        row["gpu"] = gpu.read_text().split(",")[0].strip()
    return row


def read(path: Path) -> list[dict]:
    """The rows of a slices.tsv (none where it does not exist); rows written before the
    `concurrent` and `card_s` columns ran alone: 1 and their wall."""
    if not path.is_file():
        return []
    with path.open() as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    for r in rows:
        r["concurrent"] = r.get("concurrent") or "1"
        r["card_s"] = r.get("card_s") or r["wall_s"]
        r["synthetic"] = r.get("synthetic") or ""  # sets on disk the slice could read (none before the column)
    return rows


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__.strip().splitlines()[-1].strip(), file=sys.stderr)
        return 2
    files_at, profile = Path(argv[0]), argv[1]
    row = parse(files_at)
    row["imported_at"] = datetime.now(UTC).strftime("%Y-%m-%dT%H:%MZ")
    out = ROOT / "results" / profile / "slices.tsv"
    out.parent.mkdir(parents=True, exist_ok=True)
    rows = read(out) + [row]
    tmp = out.with_suffix(".tsv.tmp")
    with tmp.open("w") as f:
        f.write("\t".join(COLUMNS) + "\n")
        f.writelines("\t".join(str(r[c]) for c in COLUMNS) + "\n" for r in rows)
    tmp.replace(out)
    print(f"slice_log: {row['wall_s']} s on {row['gpu'] or 'an unnamed card'} -> {out.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
