"""The checkpoints notebook 05's default view needs, exported from a results store (issue #21).

A GPU sweep keeps every mode's ERM checkpoints (other runs start from them) on the machine it ran
on, and that machine is given back after each call: only files copied to the call's output come
back. `export_study` picks the models that the notebook's default parameters select from the
store's records (`analysis.saliency_study.study_configs`, exactly as the notebook does: the
selection rule's setting per mode and seed) and copies their checkpoints into another folder,
e.g. the output of the call, to be committed under `results/<profile>/checkpoints/`.

With `half`, weights are stored in float16 (half the bytes: a width-32 small ResNet is 4.9 MB in
float32, 2.5 MB in float16); the notebook loads them into float32 models, so its maps and probes
come from the rounded weights, which the summary says. Integer buffers stay as they are.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import torch

from .io import atomic_write_bytes

NOTEBOOK_05 = Path(__file__).resolve().parents[1] / "notebooks" / "05_saliency.ipynb"


@dataclass(frozen=True)
class ExportSummary:
    needed: int  # models the study shows
    found: tuple[str, ...]  # hashes whose checkpoints were in the store (and were written)
    missing: tuple[str, ...]  # hashes without a checkpoint there
    bytes: int  # written, in all
    half: bool


def default_study(notebook: str | Path = NOTEBOOK_05) -> tuple[dict, float, float]:
    """(study, fingerprint, fidelity) from the notebook's parameters cell: its defaults, as
    `store_choice.choose_study` receives them (results_dir as written, relative to notebooks/)."""
    from .notebook_parameters import read_parameters
    from .store_choice import STUDY_FIELDS

    params = {name: p.default for name, p in read_parameters(notebook).items()}
    missing = [f for f in (*STUDY_FIELDS, "fingerprint", "fidelity") if f not in params]
    if missing:
        raise ValueError(f"{Path(notebook).name}: parameters cell lacks {', '.join(missing)}")
    return {f: params[f] for f in STUDY_FIELDS}, float(params["fingerprint"]), float(params["fidelity"])


def study_hashes(store_dir: str | Path, study: dict, fingerprint: float, fidelity: float) -> dict[tuple, str]:
    """(mode, seed) -> the hash of the run notebook 05 shows, selected from `store_dir`'s records."""
    from .analysis.saliency_study import study_configs
    from .results import ResultStore
    from .store_choice import STUDY_MODES, _study_base

    base = _study_base(study, fingerprint, fidelity)
    configs = study_configs(base, STUDY_MODES, study["seeds"], store=ResultStore(store_dir))
    return {key: c.hash for key, c in configs.items()}


def export_study(store_dir: str | Path, out_dir: str | Path, half: bool = False,
                 notebook: str | Path = NOTEBOOK_05, ratio: float | None = None,
                 seeds: list[int] | None = None) -> ExportSummary:
    """Copy the checkpoints of notebook 05's default models from `store_dir` to `out_dir`
    (`<hash>.pt`, written atomically; float16 weights with `half`). `ratio` and `seeds` replace
    the notebook's (the paper-scale saliency study runs 3 seeds at 0.99 and 0.999; the default
    view commits 2 seeds' checkpoints)."""
    from .results import ResultStore

    study, fingerprint, fidelity = default_study(notebook)
    if ratio is not None:
        study = {**study, "ratio": float(ratio)}
    if seeds is not None:
        study = {**study, "seeds": [int(s) for s in seeds]}
    hashes = sorted(set(study_hashes(store_dir, study, fingerprint, fidelity).values()))
    store = ResultStore(store_dir)
    found, missing, written = [], [], 0
    for h in hashes:
        state = store.load_checkpoint(h)
        if state is None:
            missing.append(h)
            continue
        if half:
            state = {k: v.half() if v.is_floating_point() else v for k, v in state.items()}
        buf = io.BytesIO()
        torch.save(state, buf)
        atomic_write_bytes(Path(out_dir) / f"{h}.pt", buf.getvalue())
        written += len(buf.getvalue())
        found.append(h)
    return ExportSummary(len(hashes), tuple(found), tuple(missing), written, half)
