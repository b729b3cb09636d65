"""GPU-hours of the paper-real grid with ffr against the authors' recipe: a stated model over
measured rates (no GPU needed to run it).

    python bench/gpu_hours.py                              # paper-real, inputs from bench/results/
    python bench/gpu_hours.py --authors-loop bench/results/authors_loop_cuda.json --sd dpm++

Model. Trainings: the profile's DAG (sweeps.plan.closure); a node trains its last stage for `epochs` on
its set and evaluates validation every epoch and once more, then the real (and for runs with
synthetic data the synthetic) test set; a DFR node forwards validation and test (theirs also the
training set, as their DFR scripts extract its features). GPU-seconds = images of each kind / that
kind's rate, summed; kinds are the dataset's real files and the synthetic images. Set sizes: the
authors' rule on their pools (splits.biased_counts; pools and test sets from OFFICIAL_CODE.md,
the validation pool modelled as the test set's natural mix) and the authors' synthetic sizes
(recipes.usb_counts, even ASB/FFR counts).
- ffr: each DAG node once (stage 1 and DFR bases reused), our loop's rates for every kind
  (data decoded once, on the GPU), plus decoding every image once; Stable Diffusion at our
  settings (per-image seeds, 32 prompts a call), exactly the images the sweep takes: per group,
  the most any ratio's USB/ASB/FFR set needs plus the synthetic test set.
- authors' code: the same DAG (their FFR stage 2 and DFR scripts load the stage-1 and ERM
  checkpoints: their code reuses too), their loop's rates per file kind (a PIL DataLoader with
  2 workers, full-size files, fp32); their generation scripts' counts (10,000 a group for faces,
  20,000 for SpuCo Animals) at 10 prompts a call.
- authors without reuse: every run trains its own stage 1 and DFR base (sweeps.plan.count_trainings'
  "without reuse"), their rates.
Rejected images (either filter) are not counted: their rate under SD is not measured here.
Every input is printed with its source and whether it is measured or modelled; the JSON
(bench/results/gpu_hours_<profile>.json) keeps them and the table.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from _common import RESULTS, machine_info, write_json

from ffr_lib.data.splits import VAL_FLOOR, biased_counts
from ffr_lib.generation.recipes import Recipe, synthetic_counts, usb_counts
from ffr_lib.sweeps.grids import unique
from ffr_lib.sweeps.plan import closure
from ffr_lib.sweeps.profiles import get_profile
from ffr_lib.training.config import RunConfig

SYNTHETIC = "synthetic"
REPO = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Counts:
    """(y, b) count tables of one dataset: the training and validation pools the biased splits
    are cut from, the test set, the majority bias of each class."""

    train_pool: np.ndarray
    val_pool: np.ndarray
    test: np.ndarray
    majority: tuple[int, ...]

    @property
    def support(self) -> np.ndarray:
        return self.train_pool > 0


def _spuco(major: int, minor: int) -> np.ndarray:
    out = np.zeros((4, 4), dtype=np.int64)
    for y, partner in ((0, 1), (1, 0), (2, 3), (3, 2)):  # majority background b = y, minority = partner
        out[y, y], out[y, partner] = major, minor
    return out


# OFFICIAL_CODE.md: the authors' 90 % training splits and test sets (CelebA-HQ, UTK-Face), the
# SpuCo Animals release (train 10,000 / 500, val 500 / 25, test 500 / 500 per group). The faces'
# validation pools are not published: modelled as the test set (the same 10 % of the natural mix).
PAPER_COUNTS = {
    "celeba-hq": Counts(np.array([[592, 5335], [7797, 866]]), np.array([[914, 693], [943, 450]]),
                        np.array([[914, 693], [943, 450]]), (1, 0)),
    "utk-face": Counts(np.array([[103, 934], [5731, 636]]), np.array([[723, 103], [710, 121]]),
                       np.array([[723, 103], [710, 121]]), (1, 0)),
    "spuco-animals": Counts(_spuco(10_000, 500), _spuco(500, 25), _spuco(500, 500), (0, 1, 2, 3)),
}
# their generate_images_<dataset>.py: num_images_max images per (class, bias) group and run
AUTHORS_PER_GROUP = {"celeba-hq": 10_000, "utk-face": 10_000, "spuco-animals": 20_000}


@dataclass(frozen=True)
class Rates:
    """images/s: training and evaluation per kind (a dataset name or 'synthetic'), decoding
    once per kind (0: not counted), Stable Diffusion per dataset."""

    train: Mapping[str, float]
    eval: Mapping[str, float]
    generate: Mapping[str, float]
    decode: Mapping[str, float]


# -- sets and images -----------------------------------------------------------------------------
def real_sets(counts: Counts, ratio: float) -> dict[str, np.ndarray]:
    """(y, b) counts of the real train, val (>= VAL_FLOOR a group) and test sets at `ratio`."""
    return {"train": biased_counts(counts.train_pool, ratio, majority=counts.majority),
            "val": biased_counts(counts.val_pool, ratio, floor=VAL_FLOOR, majority=counts.majority),
            "test": counts.test}


def stage_counts(config: RunConfig, counts: Counts) -> tuple[int, np.ndarray]:
    """(real images, synthetic (y, b) counts) of a run's last stage."""
    sets = real_sets(counts, config.ratio)
    stage = config.stages[-1]
    if stage == "real":
        return int(sets["train"].sum()), np.zeros_like(sets["train"])
    if stage == "usb":
        syn = usb_counts(sets["train"], counts.support)
    else:
        syn = synthetic_counts(sets["train"], Recipe(config.recipe, scale=config.scale), counts.support)
    return (0 if stage == "synthetic" else int(sets["train"].sum())), syn


def node_images(config: RunConfig, counts: Counts, dfr_forwards_train: bool) -> tuple[dict, dict]:
    """({kind: images trained}, {kind: images evaluated}) of one node of the DAG."""
    c = config.canonical()
    kind = c.dataset
    sets = real_sets(counts, c.ratio)
    n_val, n_test = int(sets["val"].sum()), int(sets["test"].sum())
    syn_test = int((counts.test * counts.support).sum()) if c.uses_synthetic else 0
    if not c.trains:  # DFR: features of validation and test (theirs: and of the base's training set)
        evaluated = {kind: n_val + n_test}
        if dfr_forwards_train:
            real, syn = stage_counts(c.base(), counts)
            evaluated = {kind: real + n_val + n_test, SYNTHETIC: int(syn.sum())}
        return {}, evaluated
    real, syn = stage_counts(c, counts)
    trained = {kind: c.epochs * real, SYNTHETIC: c.epochs * int(syn.sum())}
    return trained, {kind: (c.epochs + 1) * n_val + n_test, SYNTHETIC: syn_test}


def seconds(images: tuple[dict, dict], rates: Rates) -> float:
    trained, evaluated = images
    return sum(n / rates.train[k] for k, n in trained.items() if n) + sum(
        n / rates.eval[k] for k, n in evaluated.items() if n)


def training_seconds(configs: Iterable[RunConfig], counts: Mapping[str, Counts], rates: Rates, reuse: bool,
                     dfr_forwards_train: bool) -> dict[str, float]:
    """GPU-seconds of training and evaluation per dataset: each DAG node once (reuse), or each
    run with its whole chain of dependencies (no reuse)."""
    runs = unique(configs)
    cost: dict[str, float] = {}

    def own(c: RunConfig) -> float:
        if c.hash not in cost:
            cost[c.hash] = seconds(node_images(c, counts[c.dataset], dfr_forwards_train), rates)
        return cost[c.hash]

    def chain(c: RunConfig) -> float:
        return own(c) + sum(chain(d) for d in c.dependencies())

    out: dict[str, float] = {}
    for c in closure(runs).values() if reuse else runs:
        out[c.dataset] = out.get(c.dataset, 0.0) + (own(c) if reuse else chain(c))
    return out


def synthetic_needed(configs: Iterable[RunConfig], counts: Mapping[str, Counts]) -> dict[str, int]:
    """Images of the balanced set each dataset's sweep takes (the disk source takes training
    images from the front of each group, the synthetic test set from the back): the number of
    groups x the largest (training need at any ratio + synthetic test) over groups."""
    need: dict[str, np.ndarray] = {}
    for c in closure(unique(configs)).values():
        if not c.trains or not c.uses_synthetic:
            continue
        _, syn = stage_counts(c, counts[c.dataset])
        test = counts[c.dataset].test * counts[c.dataset].support
        need[c.dataset] = np.maximum(need.get(c.dataset, np.zeros_like(syn)), syn + test)
    return {d: int(n.max()) * int(counts[d].support.sum()) for d, n in need.items()}


def decode_seconds(dataset: str, counts: Counts, generated: int, rates: Rates) -> float:
    """Decoding every real image of the splits and the synthetic set once (0 where not counted)."""
    real = int(counts.train_pool.sum() + counts.val_pool.sum() + counts.test.sum())
    return sum(n / rates.decode[k] for k, n in ((dataset, real), (SYNTHETIC, generated)) if n and rates.decode.get(k))


# -- the model's table ----------------------------------------------------------------------------
def budget(configs: list[RunConfig], counts: Mapping[str, Counts], ours: Rates, theirs: Rates) -> dict:
    """GPU-hours per dataset and step for ffr, the authors' code and the authors without reuse."""
    datasets = sorted({c.dataset for c in configs})
    needed = synthetic_needed(configs, counts)
    theirs_images = {d: AUTHORS_PER_GROUP[d] * int(counts[d].support.sum()) for d in datasets}
    train = {"ffr": training_seconds(configs, counts, ours, reuse=True, dfr_forwards_train=False),
             "authors": training_seconds(configs, counts, theirs, reuse=True, dfr_forwards_train=True),
             "authors_no_reuse": training_seconds(configs, counts, theirs, reuse=False, dfr_forwards_train=True)}
    rows = []
    for d in datasets:
        gen_ours = needed.get(d, 0) / ours.generate[d]
        gen_theirs = theirs_images[d] / theirs.generate[d]
        rows.append({"dataset": d, "step": "generation", "ffr": gen_ours, "authors": gen_theirs,
                     "authors_no_reuse": gen_theirs, "images_ffr": needed.get(d, 0), "images_authors": theirs_images[d]})
        rows.append({"dataset": d, "step": "training", "ffr": train["ffr"][d] + decode_seconds(d, counts[d], needed.get(d, 0), ours),
                     "authors": train["authors"][d], "authors_no_reuse": train["authors_no_reuse"][d]})
    for r in rows:
        for k in ("ffr", "authors", "authors_no_reuse"):
            r[k] = r[k] / 3600
    total = {k: sum(r[k] for r in rows) for k in ("ffr", "authors", "authors_no_reuse")}
    return {"rows": rows, "total": total, "synthetic_images": needed, "authors_images": theirs_images,
            "ratio_authors": total["authors"] / total["ffr"], "ratio_no_reuse": total["authors_no_reuse"] / total["ffr"]}


def markdown(result: dict) -> str:
    lines = ["| dataset | step | ffr GPU-h | authors' code GPU-h | authors, no reuse GPU-h |", "|---|---|---:|---:|---:|"]
    for r in result["rows"]:
        lines.append(f"| {r['dataset']} | {r['step']} | {r['ffr']:,.1f} | {r['authors']:,.1f} | {r['authors_no_reuse']:,.1f} |")
    t = result["total"]
    lines.append(f"| **total** | | **{t['ffr']:,.1f}** | **{t['authors']:,.1f}** | **{t['authors_no_reuse']:,.1f}** |")
    lines.append(f"| **authors / ffr** | | 1.00 | **{result['ratio_authors']:.2f}** | **{result['ratio_no_reuse']:.2f}** |")
    return "\n".join(lines)


# -- inputs from bench/results ---------------------------------------------------------------------
def _read(path: Path) -> dict | None:
    return json.loads(path.read_text()) if path.is_file() else None


def _source(payload: dict, path: Path) -> str:
    m = payload.get("machine", {})
    name = path.relative_to(REPO) if path.is_relative_to(REPO) else path
    return f"{name} ({m.get('gpu_name') or m.get('device')}, {m.get('date', '')[:10]}): `{m.get('command')}`"


def measured_rates(train_json: Path, sd_json: Path, loop_json: Path, sd: str, sd_batch: int,
                   compiled: bool = False) -> tuple[Rates, Rates, list[dict]]:
    """Our and the authors' rates from the benchmark JSONs, and the inputs table: each value
    with 'measured', 'modelled' or 'not counted' and where it comes from. Our training and
    evaluation rates come from the authors-loop JSON when it exists (the same machine and
    session as the authors' rates), else from the training-throughput JSON."""
    train, sdj, loop = _read(train_json), _read(sd_json), _read(loop_json)
    if train is None or sdj is None:
        raise SystemExit(f"gpu_hours: needs {train_json} and {sd_json} (bench/README.md says how to make them)")
    inputs: list[dict] = []

    def note(name: str, value: float, how: str, source: str) -> float:
        inputs.append({"input": name, "value": value, "how": how, "source": source})
        return value

    rows = {r["loop"]: r for r in train["rows"]}
    kinds = [*PAPER_COUNTS, SYNTHETIC]
    key = "ours_compile_train_images_per_s" if compiled else "ours_train_images_per_s"
    if loop is not None and key in loop:
        ours_train = note("ffr training" + (" (torch.compile)" if compiled else "") + ", images/s", loop[key],
                          "measured", _source(loop, loop_json))
        ours_eval = note("ffr evaluation, images/s", loop["ours_eval_images_per_s"], "measured", _source(loop, loop_json))
    else:
        row = "ours + compile" if compiled else "ours"
        if row not in rows:
            raise SystemExit(f"gpu_hours: {train_json} has no row {row!r} (and {loop_json} is missing)")
        ours_train = note(f"ffr training ({row}), images/s", rows[row]["images_per_s"], "measured",
                          _source(train, train_json))
        ours_eval = note("ffr evaluation, images/s", 3 * ours_train, "modelled",
                         "3 x training: a forward pass is about a third of a training step's FLOPs")
    theirs_train, theirs_eval, decode = {}, {}, {}
    by_kind = {r["kind"]: r for r in (loop or {}).get("rows", []) if r.get("workers") == 2}
    for kind in kinds:
        if kind in by_kind:
            r = by_kind[kind]
            what = f"{kind} ({r['size_px'][0]} px {r['format']}{', made files' if r['made_here'] else ''})"
            theirs_train[kind] = note(f"authors' training, {what}, images/s", r["authors_train_images_per_s"],
                                      "measured", _source(loop, loop_json))
            theirs_eval[kind] = note(f"authors' evaluation, {what}, images/s", r["authors_eval_images_per_s"],
                                     "measured", _source(loop, loop_json))
            decode[kind] = note(f"ffr decode once, {what}, images/s", r["ours_decode_images_per_s"], "measured",
                                _source(loop, loop_json))
        else:
            naive = rows["naive"]["images_per_s"]
            theirs_train[kind] = note(f"authors' training, {kind}, images/s", naive, "modelled",
                                      f"the naive loop (224 px PNGs, {rows['naive'].get('workers')} workers, fp32), an "
                                      f"upper bound on theirs (2 workers, full-size files): {_source(train, train_json)}")
            theirs_eval[kind] = note(f"authors' evaluation, {kind}, images/s", naive, "modelled", "as their training")
            note(f"ffr decode once, {kind}", 0.0, "not counted", "not measured (minutes for a dataset)")
    sd_rows = sdj["rows"]

    def sd_rate(name: str, steps: int, batch: int) -> float:
        found = [r for r in sd_rows if r["name"] == name and r["steps"] == steps and r["batch"] == batch and not r.get("error")]
        if not found:
            raise SystemExit(f"gpu_hours: {sd_json} has no row {name!r} at {steps} steps, batch {batch}")
        return found[0]["images_per_s"]

    gen_ours, gen_theirs = {}, {}
    for d in PAPER_COUNTS:
        steps = 50 if d == "spuco-animals" else 25
        which = "animals" if d == "spuco-animals" else "faces"
        gen_theirs[d] = note(f"authors' SD v1.4, {d} (PNDM {steps} steps, 10 prompts a call), images/s",
                             sd_rate(f"authors-{which}", steps, 10), "measured", _source(sdj, sd_json))
        name, ours_steps = ("ours", steps) if sd == "pndm" else ("ours-dpm++", 20)
        gen_ours[d] = note(f"ffr SD v1.4, {d} ({name}, {ours_steps} steps, {sd_batch} prompts a call), images/s",
                           sd_rate(name, ours_steps, sd_batch), "measured", _source(sdj, sd_json))
    ours = Rates({k: ours_train for k in kinds}, {k: ours_eval for k in kinds}, gen_ours, decode)
    theirs = Rates(theirs_train, theirs_eval, gen_theirs, {})
    return ours, theirs, inputs


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--profile", default="paper-real", help="paper-real or paper-real-official")
    p.add_argument("--train", type=Path, default=RESULTS / "train_throughput_resnet50_224_cuda.json")
    p.add_argument("--sd-json", type=Path, default=RESULTS / "sd_throughput_cuda.json")
    p.add_argument("--authors-loop", type=Path, default=RESULTS / "authors_loop_cuda.json")
    p.add_argument("--sd", choices=("pndm", "dpm++"), default="pndm",
                   help="ffr's sampler: pndm (the authors' steps) or dpm++ (20 steps; quality not yet compared)")
    p.add_argument("--sd-batch", type=int, default=32, help="ffr's prompts a call (a row of the SD JSON)")
    p.add_argument("--compile", action="store_true", help="ffr trains with torch.compile (`ffr sweep --compile`)")
    p.add_argument("--out", help="JSON path (default bench/results/gpu_hours_<profile>.json)")
    args = p.parse_args(argv)
    configs = get_profile(args.profile).configs()
    ours, theirs, inputs = measured_rates(args.train, args.sd_json, args.authors_loop, args.sd, args.sd_batch,
                                          args.compile)
    result = budget(configs, PAPER_COUNTS, ours, theirs)
    sources = list(dict.fromkeys(i["source"] for i in inputs))
    print("inputs:")
    for i in inputs:
        print(f"  {i['input']}: {i['value']:,.2f} [{i['how']}, {sources.index(i['source']) + 1}]")
    for k, src in enumerate(sources, 1):
        print(f"  [{k}] {src}")
    print(f"plan: {args.profile}, {len(configs)} runs, {len({c.dataset for c in configs})} datasets, "
          f"epochs {sorted({c.epochs for c in configs})}; synthetic images ffr {result['synthetic_images']}, "
          f"authors {result['authors_images']}")
    table = markdown(result)
    print(table)
    met = result["ratio_authors"] >= 5
    print(f"goal (ffr at most a fifth of the authors' code): {'met' if met else 'not met'} "
          f"({result['ratio_authors']:.2f}x; modelled inputs: {sum(i['how'] != 'measured' for i in inputs)})")
    payload = {"benchmark": "gpu_hours", "profile": args.profile, "sd": args.sd, "sd_batch": args.sd_batch,
               "compile": args.compile,
               "inputs": inputs, **result, "table": table, "goal_met": met, "machine": machine_info("cpu")}
    print("wrote", write_json(args.out or RESULTS / f"gpu_hours_{args.profile}.json", payload))
    return payload


if __name__ == "__main__":
    main()
