"""The README's findings, generated from figures/claims.csv (the claims engine) and the paper
store's selected tables, never written by hand: a table of the claims' comparisons and a list of
where we disagree with the paper. The block sits between two marker comments in README.md.

    python -m ffr_lib.findings                      # print the block
    python -m ffr_lib.findings --write README.md    # replace README's block
    python -m ffr_lib.findings --check README.md    # exit 1 when README's block is stale
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pandas as pd

from .claims import MIN_PAIRS, MIN_SEEDS, NO_STORE, NOT_SUPPORTED, SUPPORTED, THEORY_STORE
from .io import atomic_write_text
from .paper_numbers import paper_table

START, END = "<!-- findings:start -->", "<!-- findings:end -->"
CLAIMS_CSV = Path("claims.csv")
# a paper-scale store's every method x mode at 99.9 %: the evidence protocol's store, else the one before it
USB_TABLES = (Path("paper") / "iclr_table1.csv", Path("paper-v1") / "iclr_table1.csv")


def paper_scale(store: str) -> bool:
    """Stores at the paper's scale (3 seeds, the paper's grid): the `paper*` profiles."""
    return store.startswith("paper")


def _num(value: float, unit: str) -> str:
    return f"{value:+.1f}" if unit.endswith("points") else f"{value:.4f}"


def _effect(r: pd.Series) -> str:
    text = _num(r["effect"], r["unit"])
    if not pd.isna(r["ci_lo"]):
        text += f" [{_num(r['ci_lo'], r['unit'])}, {_num(r['ci_hi'], r['unit'])}]"
    return text


def _paper(r: pd.Series) -> str:
    if not pd.isna(r["paper_value"]):
        return f"{r['paper_value']:+.1f} ({r['paper_ref']})"
    return str(r["paper_ref"]) if not pd.isna(r["paper_ref"]) else ""


def _sides(comparison: str) -> tuple[str, str]:
    better, _, worse = comparison.partition(" > ")
    return better, worse


def shown_rows(claims: pd.DataFrame) -> pd.DataFrame:
    """The rows the findings table shows: per claim its paper-scale and theory rows, or, for a
    claim no paper-scale store holds, whatever store does."""
    strong = claims["store"].map(paper_scale) | (claims["store"] == THEORY_STORE)
    has_strong = claims.assign(s=strong).groupby("claim", sort=False)["s"].transform("any")
    return claims[strong | ~has_strong]


def findings_table(claims: pd.DataFrame) -> str:
    rows = ["| claim | comparison (A > B) | store | cells x seeds | effect [95 % CI] | P(A>B) | cells where A > B "
            "| verdict | claim on store | the paper |", "|---|---|---|---|---|---|---|---|---|---|"]
    for _, r in shown_rows(claims).iterrows():
        size = f"{r['cells']}" + (f" x {int(r['seeds'])}" if not pd.isna(r["seeds"]) else " tables")
        p = "" if pd.isna(r["p_improve"]) else f"{r['p_improve']:.2f}"
        effect = _effect(r) if r["cells"] else "no runs"
        rows.append(f"| {r['claim']} | {r['comparison']} | `{r['store']}` | {size} | {effect} {r['unit']} | {p} "
                    f"| {r['cells_direction_holds']}/{r['cells']} | {r['verdict']} | {r['claim_verdict']} | {_paper(r)} |")
    return "\n".join(rows)


def claim_lines(claims: pd.DataFrame) -> list[str]:
    """One line per claim: its text and its verdict on each store."""
    out = []
    for number, part in claims.groupby("claim", sort=False):
        verdicts = part.drop_duplicates("store")
        on = "; ".join(f"{v} on `{s}`" for s, v in zip(verdicts["store"], verdicts["claim_verdict"]))
        out.append(f"- **{number}.** {part['text'].iloc[0]} {on[0].upper()}{on[1:]}.")
    return out


def disagreements(claims: pd.DataFrame) -> list[str]:
    """Every comparison not supported on a paper-scale store (reversed, or not shown), and every
    claim no paper-scale store holds, worded from the numbers."""
    out = []
    strong = claims[claims["store"].map(paper_scale) | (claims["store"] == THEORY_STORE)]
    for _, r in strong[strong["verdict"] != SUPPORTED].iterrows():
        a, b = _sides(r["comparison"])
        paper = (f"; the paper reports {_paper(r)}" if not pd.isna(r["paper_value"])
                 else f"; the paper: {r['paper_ref']}" if not pd.isna(r["paper_ref"]) else "")
        where = f"claim {r['claim']}, `{r['store']}`"
        if r["verdict"] == NOT_SUPPORTED and b:
            out.append(f"- **Reversed** ({where}): {b} beats {a} by {-r['effect']:.1f} {r['unit']} "
                       f"[{-r['ci_hi']:.1f}, {-r['ci_lo']:.1f}]; {a} is ahead in {r['cells_direction_holds']} of "
                       f"{r['cells']} cells, P({a} > {b}) = {r['p_improve']:.2f}{paper}.")
        elif r["verdict"] == NOT_SUPPORTED:
            out.append(f"- **Refuted** ({where}): {r['comparison']} fails in {r['cells'] - r['cells_direction_holds']}"
                       f" of {r['cells']} tables ({r['note']}).")
        else:
            out.append(f"- **Not shown** ({where}): {r['comparison']}: {_effect(r)} {r['unit']} ({r['note']}); "
                       f"{a} is ahead in {r['cells_direction_holds']} of {r['cells']} cells{paper}.")
    for number, part in claims.groupby("claim", sort=False):
        if part["store"].map(paper_scale).any() or (part["store"] == THEORY_STORE).any():
            continue
        stores = [s for s in dict.fromkeys(part["store"]) if s != NO_STORE]
        held = f"only {', '.join(f'`{s}`' for s in stores)} hold(s) it" if stores else "no store holds it"
        notes = ", ".join(sorted(set(part["note"].dropna())))
        out.append(f"- **Untested at the paper's scale** (claim {number}): no paper-scale store holds its runs; "
                   f"{held} ({part['claim_verdict'].iloc[0]}: {notes}).")
    return out


def usb_line(table: pd.DataFrame, source: Path = USB_TABLES[0]) -> str | None:
    """USB against None with ERM at 99.9 % on the paper store (its ICLR table 1), beside the
    paper's gains: not one of the eight claims, but the largest gap between the two."""
    ours = table[table["method"] == "ERM"].pivot_table(index="dataset", columns="mode", values="test_wa_mean")
    if not {"USB", "None"} <= set(ours.columns):
        return None
    gains = ((ours["USB"] - ours["None"]) * 100).round(1)
    paper = paper_table("iclr_table1")
    paper = paper[paper["method"] == "erm"].pivot_table(index="dataset", columns="mode", values="wa")
    theirs = (paper["usb"] - paper["none"]).round(1)
    shown = ", ".join(f"{g:+.1f} on {d} (WA {100 * ours.loc[d, 'USB']:.1f} against {100 * ours.loc[d, 'None']:.1f})"
                      for d, g in gains.items())
    seeds = "/".join(str(n) for n in sorted(set(table["n"])))
    return (f"- **Beyond the eight claims**: USB over None with ERM at 99.9 % (`{source.parent}`, `figures/{source}`,"
            f" mean over {seeds} seeds): {shown} WA points; the paper's USB gains {theirs.min():+.1f} to "
            f"{theirs.max():+.1f} over None on its {len(theirs)} datasets (ICLR table 1).")


def in_progress_line(stores: dict) -> str | None:
    """The stores a GPU sweep is still filling (claims.json's `stores`), which are not judged yet."""
    busy = {s: m for s, m in stores.items() if isinstance(m, dict) and m.get("in_progress")}
    if not busy:
        return None
    parts = [f"`{s}` ({m['recorded']:,} of the {m['runs']:,} runs it needs so far)" for s, m in busy.items()]
    return ("Not judged until their grids are complete (the GPU evidence runs fill them in slices; a "
            "grid needs fewer runs as staged search discards stage 2s): " + "; ".join(parts) + ".")


def render(claims: pd.DataFrame, usb_table: pd.DataFrame | None = None, usb_source: Path = USB_TABLES[0],
           stores: dict | None = None) -> str:
    """The README block, markers included, from claims.csv (and the paper store's ICLR table 1;
    `stores`: claims.json's per-store entries, for the stores still in progress)."""
    quick = claims[~claims["store"].map(paper_scale) & ~claims["store"].isin([THEORY_STORE, NO_STORE])]
    counts = quick["verdict"].value_counts()
    quick_text = ", ".join(f"{n} {v}" for v, n in counts.items())
    seeds = sorted({int(s) for s in quick["seeds"].dropna()})
    lines = [
        START,
        "<!-- generated by `python -m ffr_lib.findings --write README.md` from figures/claims.csv and "
        f"figures/{usb_source}; edit ffr_lib/paper_claims.py or the rule, never this block -->",
        "**Findings** (`figures/claims.csv`, rebuilt by `ffr figures`). Every claim of TARGETS.md is judged on every "
        "store that holds its evidence by one rule, `ffr_lib.claims.RULE`: the effect is the mean paired difference "
        "A - B over cells (dataset, ratio) and seeds, in points; its 95 % interval a bootstrap that resamples seeds "
        f"within each cell; supported above 0, not supported below, inconclusive across 0 or with fewer than "
        f"{MIN_SEEDS} seeds a cell or {MIN_PAIRS} pairs in all. Our stores are the embedded world; the paper's numbers are on its real "
        "datasets and stand beside ours for orientation, never in a verdict.",
        "",
        *claim_lines(claims),
        "",
        *([busy, ""] if (busy := in_progress_line(stores or {})) else []),
        findings_table(claims),
        "",
        f"Stores short of the evidence protocol's scale or seeds ({', '.join(f'`{s}`' for s in dict.fromkeys(quick['store']))}; seeds per cell: "
        f"{', '.join(map(str, seeds))}) add {len(quick)} comparisons ({quick_text}): pipeline checks, not evidence; "
        "`figures/claims.csv` lists them.",
        "",
        "**Where we disagree with the paper** (paper-scale stores; generated from the rows above):",
        "",
        *(disagreements(claims) or ["- nowhere: every comparison on a paper-scale store is supported."]),
    ]
    extra = usb_line(usb_table, usb_source) if usb_table is not None else None
    if extra:
        lines.append(extra)
    lines.append(END)
    return "\n".join(lines) + "\n"


def generate(figures: str | Path = "figures") -> str:
    """The block from the committed CSVs under `figures`."""
    figures = Path(figures)
    path = figures / CLAIMS_CSV
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no claims table (run `ffr figures --only claims`)")
    claims = pd.read_csv(path, dtype={"claim": str}, keep_default_na=False, na_values=[""])  # "None" is a mode
    source = next((t for t in USB_TABLES if (figures / t).is_file()), USB_TABLES[0])
    usb = figures / source
    table = pd.read_csv(usb, keep_default_na=False, na_values=[""]) if usb.is_file() else None
    sidecar = path.with_suffix(".json")
    stores = json.loads(sidecar.read_text()).get("stores", {}) if sidecar.is_file() else {}
    return render(claims, table, source, stores)


def replace_block(text: str, block: str, name: str = "README.md") -> str:
    """`text` with the part from START to END (markers included, through END's line) replaced."""
    if text.count(START) != 1 or text.count(END) != 1 or text.index(START) > text.index(END):
        raise ValueError(f"{name}: needs exactly one {START} line followed by one {END} line")
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    return head + block + tail.removeprefix("\n")


def current_block(text: str, name: str = "README.md") -> str:
    """README's block as it stands, markers included."""
    replace_block(text, "", name)  # validates the markers
    return START + text.split(START, 1)[1].split(END, 1)[0] + END + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ffr_lib.findings", description=__doc__.split("\n\n")[0])
    parser.add_argument("--figures", type=Path, default=Path("figures"), help="where claims.csv lies")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--write", type=Path, metavar="README", help="replace the block in this file")
    group.add_argument("--check", type=Path, metavar="README", help="exit 1 if this file's block is stale")
    args = parser.parse_args(argv)
    try:
        block = generate(args.figures)
        target = args.write or args.check
        if target is None:
            sys.stdout.write(block)
            return 0
        if not target.is_file():
            raise FileNotFoundError(f"{target}: no such file")
        text = target.read_text()
        if args.check:
            stale = current_block(text, str(target)) != block
            print(f"{target}: findings block is {'stale: run python -m ffr_lib.findings --write ' + str(target) if stale else 'current'}")
            return int(stale)
        atomic_write_text(target, replace_block(text, block, str(target)))
        print(f"{target}: findings block written from {args.figures / CLAIMS_CSV}")
        return 0
    except (FileNotFoundError, ValueError) as exc:
        print(f"ffr_lib.findings: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
