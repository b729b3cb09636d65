"""The pilot's report (issue #20): lr curves of every arm and where selection lands, from a pilot
store (`paper-pilot` on a GPU, `paper-pilot-cpu` on a CPU) into `figures/pilot/<profile>/`.

    python scripts/pilot_report.py --profile paper-pilot-cpu   # reads results/paper-pilot-cpu
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ffr_lib import tables as T  # noqa: E402
from ffr_lib.paper_figures import BUILDERS  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", default="paper-pilot-cpu", choices=("paper-pilot", "paper-pilot-cpu"))
    ap.add_argument("--results", default=str(ROOT / "results"), help="results root: <root>/<profile>")
    ap.add_argument("--out", default=None, help="default figures/pilot/<profile>")
    args = ap.parse_args(argv)
    if not (Path(args.results) / args.profile).is_dir():
        print(f"pilot_report: --results: no store {Path(args.results) / args.profile}", file=sys.stderr)
        return 2
    results = T.load_results(args.profile, args.results).require(partial=True)
    out = Path(args.out) if args.out else ROOT / "figures" / "pilot" / args.profile
    art = BUILDERS["pilot"](results, out, {"made_by": "scripts/pilot_report.py", "profile": args.profile})
    shown = art.table.assign(lr=art.table["lr"].map("{:g}".format))
    print(shown.to_string(index=False, float_format="{:.3f}".format))
    for path in art.paths:
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
