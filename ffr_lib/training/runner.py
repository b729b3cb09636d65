"""One run as a DAG node: get its dependencies' models (cached checkpoints, else trained once),
train or refit its own last step, evaluate, and write its record.

Record keys: hash, config (canonical), label, status ('ok' | 'failed'), error, val, test,
test_synthetic (metrics records, see ffr_lib.metrics), best_epoch, history, method_state,
train_counts, dfr (DFR only), trained / reused (hashes of the trainings this call did and of the
checkpoints it loaded), seconds, device, threads, deterministic, versions, commit, finished_at.
For DFR, `val` holds the ERM base's validation metrics: the base is chosen by them (the
authors' "selected ERM model"), and DFR's own fit has seen all of validation (`val_dfr`).
"""

from __future__ import annotations

import contextlib
import platform
import time
from datetime import UTC, datetime
from functools import lru_cache

import numpy as np
import torch

from ..io import git_commit
from ..results import ResultStore
from .config import RunConfig
from .dfr import fit_dfr
from .loop import Diverged, evaluate, features_of, train_stage
from .models import Classifier, build_model
from .modes import RunData, compose, data_root, dataset_splits


@lru_cache(maxsize=1)
def versions() -> dict[str, str]:
    import sklearn
    import torchvision

    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "numpy": np.__version__,
        "sklearn": sklearn.__version__,
    }


@lru_cache(maxsize=1)
def _commit() -> str:
    return git_commit()


@contextlib.contextmanager
def determinism(device: torch.device, threads: int | None):
    """On CPU: deterministic algorithms and a fixed thread count for the run, restored after."""
    old_det = torch.are_deterministic_algorithms_enabled()
    old_threads = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    if device.type == "cpu":
        torch.use_deterministic_algorithms(True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(old_det)
        torch.set_num_threads(old_threads)


def fresh_model(config: RunConfig, n_classes: int, device: torch.device) -> Classifier:
    torch.manual_seed(config.seed)
    model = build_model(config.model, n_classes, width=config.width, pretrained=config.pretrained)
    model = model.to(device)
    return model.to(memory_format=torch.channels_last) if device.type == "cuda" else model


class Runner:
    """Executes runs against a store; `trainings` counts the network trainings it did."""

    def __init__(self, store: ResultStore, device: str | torch.device = "cpu", threads: int | None = None,
                 keep: frozenset[str] = frozenset()) -> None:
        self.store = store
        self.device = torch.device(device)
        self.threads = threads
        self.keep = keep  # hashes whose checkpoints to save (others depend on them)
        self.trainings = 0

    # -- public ------------------------------------------------------------------------
    def run(self, config: RunConfig, force: bool = False) -> dict:
        """The record of `config`: stored, or computed now (with its dependencies)."""
        config = config.canonical()
        if not force and self.store.has(config.hash):
            return self.store.get(config.hash)
        with determinism(self.device, self.threads):
            record, _ = self._compute(config, save=config.hash in self.keep)
        return record

    def model_of(self, config: RunConfig) -> tuple[Classifier, list[str], list[str]]:
        """The final model of a finished run: from its checkpoint, else (re)trained and cached.

        Returns (model, trained hashes, reused hashes)."""
        config = config.canonical()
        state = self.store.load_checkpoint(config.hash)
        if state is not None:
            splits = dataset_splits(config.dataset, config.data, data_root(config.dataset))
            model = fresh_model(config, splits.train.n_classes, self.device)
            model.load_state_dict(state)
            return model, [], [config.hash]
        record, model = self._compute(config, save=True, write=not self.store.has(config.hash))
        if record["status"] != "ok":
            raise Diverged(f"dependency {config.hash} ({config.label()}) failed: {record['error']}")
        return model, record["trained"], record["reused"]

    # -- internals ---------------------------------------------------------------------
    def _compute(self, config: RunConfig, save: bool, write: bool = True) -> tuple[dict, Classifier | None]:
        t0 = time.perf_counter()
        record = {"hash": config.hash, "config": config.to_dict(), "label": config.label(), "status": "ok", "error": None}
        model = None
        try:
            data = compose(config)
            if config.method == "dfr":
                model, extra = self._dfr(config, data)
            else:
                model, extra = self._train(config, data)
            record.update(extra)
            record["test"] = evaluate(model, data.test, data.groups, data.train_weights, "test set")
            if data.test_synthetic is not None:
                record["test_synthetic"] = evaluate(
                    model, data.test_synthetic, data.groups, data.train_weights, "synthetic test set"
                )
            if save:
                self.store.save_checkpoint(config.hash, model.state_dict())
        except Diverged as err:
            record.update(status="failed", error=f"diverged: {err}")
            record.setdefault("trained", [])
            record.setdefault("reused", [])
        record.update(
            seconds=time.perf_counter() - t0,
            device=str(self.device),
            threads=torch.get_num_threads(),
            deterministic=torch.are_deterministic_algorithms_enabled(),
            versions=versions(),
            commit=_commit(),
            finished_at=datetime.now(UTC).isoformat(timespec="seconds"),
        )
        if write:
            self.store.write(record)
        return record, model

    def _train(self, config: RunConfig, data: RunData) -> tuple[Classifier, dict]:
        prefix = config.prefix()
        if prefix is None:
            model, trained, reused = fresh_model(config, data.val.n_classes, self.device), [], []
        else:
            model, trained, reused = self.model_of(prefix)
        train = data.stages[-1]
        self.trainings += 1
        result = train_stage(
            model,
            train,
            data.val,
            data.groups,
            method=config.method,
            lr=config.lr,
            epochs=config.epochs,
            batch_size=config.batch_size,
            weight_decay=config.weight_decay,
            seed=config.seed,
            freeze_bn=config.freeze_bn,
            source_groups=data.source_groups,
            dro_step=config.dro_step,
        )
        counts = train.counts(by_source=True)
        extra = {
            "val": evaluate(model, data.val, data.groups, data.train_weights, "validation set"),
            "best_epoch": result.best_epoch,
            "history": result.history,
            "method_state": result.method_state,
            "method_groups": [list(k) for k in result.group_keys],
            "train_counts": {f"y{r.y}b{r.b}g{r.g}": int(r.count) for r in counts.itertuples()},
            "prefix": None if prefix is None else prefix.hash,
            "trained": [*trained, config.hash],
            "reused": reused,
        }
        return model, extra

    def _dfr(self, config: RunConfig, data: RunData) -> tuple[Classifier, dict]:
        base = config.base()
        model, trained, reused = self.model_of(base)
        base_record = self.store.get(base.hash)
        val = data.val.to(self.device)
        feats = features_of(model, val.images).cpu().numpy()
        fit = fit_dfr(feats, val.y.cpu().numpy(), val.group.cpu().numpy(), seed=config.seed)
        model.head = fit.head(val.n_classes).to(self.device)
        extra = {
            "val": base_record["val"],
            "val_dfr": evaluate(model, val, data.groups, data.train_weights, "validation set"),
            "dfr": {"C": fit.c, "tuning": fit.tuning, "n_per_fit": fit.n_train},
            "best_epoch": base_record.get("best_epoch"),
            "base": base.hash,
            "trained": trained,
            "reused": reused,
        }
        return model, extra
