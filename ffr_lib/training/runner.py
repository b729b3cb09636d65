"""One run as a DAG node: get its dependencies' models (cached checkpoints, else trained once),
train or refit its own last step, evaluate, and write its record.

Record keys: hash, config (canonical), label, status ('ok' | 'failed'), error, val, test,
test_synthetic (metrics records, see ffr_lib.metrics), best_epoch, history, method_state,
train_counts, <method> and val_<method> (a refitting method: DFR, AFR), trained / reused (hashes of the trainings this call did and of the
checkpoints it loaded), seconds, device, device_name (the GPU's or CPU's name), threads,
precision (training), eval_precision, compiled (ffr_lib.numerics: what distinguishes runs'
numerics), deterministic, versions, commit, finished_at.
For DFR, `val` holds the ERM base's validation metrics: the base is chosen by them (the
authors' "selected ERM model"), and DFR's own fit has seen all of validation (`val_dfr`). A
refit that holds part of validation out (AFR) is measured there instead (RefitResult.held_out).
"""

from __future__ import annotations

import contextlib
import copy
import platform
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from functools import lru_cache

import numpy as np
import torch

from ..io import git_commit
from ..results import ResultStore
from .config import RunConfig
from .loop import (
    Diverged,
    StageResult,
    eval_precision,
    evaluate,
    features_of,
    logits_of,
    precision,
    train_stage,
)
from .methods import METHODS
from .models import Classifier, build_model
from .modes import RunData, compose, data_root, dataset_splits
from .packing import PackMember, train_packed


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


@lru_cache(maxsize=4)
def device_name(device: torch.device) -> str:
    """The processor a run ran on: the GPU's name (e.g. 'NVIDIA H100 80GB HBM3'), else the CPU's."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    try:
        with open("/proc/cpuinfo") as fh:
            names = [line.split(":", 1)[1].strip() for line in fh if line.startswith("model name")]
        return names[0] if names else platform.processor() or platform.machine()
    except OSError:
        return platform.processor() or platform.machine()


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
    # CUDA: channels_last throughout; CPU: NCHW (StageTrainer trains channels_last where bf16 pays)
    return model.to(memory_format=torch.channels_last) if device.type == "cuda" else model


class Runner:
    """Executes runs against a store; `trainings` counts the network trainings it did."""

    def __init__(self, store: ResultStore, device: str | torch.device = "cpu", threads: int | None = None,
                 keep: frozenset[str] = frozenset(), compile_backend: str | None = None) -> None:
        self.store = store
        self.compile_backend = compile_backend  # torch.compile of the training step's forward (None: eager)
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
        record = self._record(config)
        model = None
        try:
            data = compose(config)
            if not config.trains:
                model, extra = self._refit(config, data)
            else:
                model, extra = self._train(config, data)
            record.update(extra)
            self._evaluate(record, model, data, save)
        except Diverged as err:
            self._fail(record, err)
        self._finish(record, t0, write)
        return record, model

    def _record(self, config: RunConfig) -> dict:
        return {"hash": config.hash, "config": config.to_dict(), "label": config.label(), "status": "ok", "error": None}

    def _fail(self, record: dict, err: Diverged) -> None:
        record.update(status="failed", error=f"diverged: {err}")
        record.setdefault("trained", [])
        record.setdefault("reused", [])

    def _evaluate(self, record: dict, model: Classifier, data: RunData, save: bool) -> None:
        record["test"] = evaluate(model, data.test, data.groups, data.train_weights, "test set")
        if data.test_synthetic is not None:
            record["test_synthetic"] = evaluate(
                model, data.test_synthetic, data.groups, data.train_weights, "synthetic test set"
            )
        if save:
            self.store.save_checkpoint(record["hash"], model.state_dict())

    def _finish(self, record: dict, t0: float, write: bool) -> None:
        record.update(
            seconds=time.perf_counter() - t0,
            device=str(self.device),
            threads=torch.get_num_threads(),
            device_name=device_name(self.device),
            precision=precision(self.device),
            eval_precision=eval_precision(self.device),
            compiled=self.compile_backend,
            deterministic=torch.are_deterministic_algorithms_enabled(),
            versions=versions(),
            commit=_commit(),
            finished_at=datetime.now(UTC).isoformat(timespec="seconds"),
        )
        if write:
            self.store.write(record)

    def _start(self, config: RunConfig, data: RunData) -> tuple[Classifier, list[str], list[str]]:
        """The model a run's last stage starts from: fresh, or its prefix's final model."""
        prefix = config.prefix()
        if prefix is None:
            return fresh_model(config, data.val.n_classes, self.device), [], []
        return self.model_of(prefix)

    def _reference(self, config: RunConfig, data: RunData, start: Classifier) -> torch.Tensor | None:
        """float (N, C): the logits on the last stage's training set of the method's reference
        model, ERM for `reference_epochs` from the run's own start model with the run's lr and
        seed (JTT's identification model); None for a method without one."""
        epochs = METHODS[config.method].reference_epochs(dict(config.hparams))
        if not epochs:
            return None
        model = copy.deepcopy(start)
        self.trainings += 1
        train_stage(model, data.stages[-1], data.val, data.groups, method="erm", lr=config.lr, epochs=epochs,
                    batch_size=config.batch_size, weight_decay=config.weight_decay, seed=config.seed,
                    freeze_bn=config.freeze_bn, source_groups=data.source_groups,
                    compile_backend=self.compile_backend)
        return logits_of(model, data.stages[-1].images.to(self.device))

    def _train(self, config: RunConfig, data: RunData) -> tuple[Classifier, dict]:
        model, trained, reused = self._start(config, data)
        reference = self._reference(config, data, model)
        self.trainings += 1
        result = train_stage(
            model,
            data.stages[-1],
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
            hparams=dict(config.hparams),
            reference=reference,
            compile_backend=self.compile_backend,
        )
        return model, self._train_extra(config, data, model, result, trained, reused)

    def _train_extra(self, config: RunConfig, data: RunData, model: Classifier, result: StageResult,
                     trained: list[str], reused: list[str]) -> dict:
        prefix = config.prefix()
        counts = data.stages[-1].counts(by_source=True)
        return {
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

    # -- packed ------------------------------------------------------------------------
    def run_pack(self, configs: list[RunConfig], composed: Mapping[str, RunData] | None = None) -> list[dict]:
        """Records of `configs` (trainings whose last stages can share one pack: same model,
        epochs, batch size, weight decay, frozen BN and set sizes), computed together by
        packing.train_packed; stored ones are returned as they are. `composed`: data sets
        already composed (modes.compose) by canonical hash; the others are composed here."""
        configs = [c.canonical() for c in configs]
        todo = [c for c in configs if not self.store.has(c.hash)]
        if todo:
            with determinism(self.device, self.threads):
                self._compute_pack(todo, composed or {})
        return [self.store.get(c.hash) for c in configs]

    def _compute_pack(self, configs: list[RunConfig], composed: Mapping[str, RunData]) -> None:
        first = configs[0]
        same = ("model", "width", "epochs", "batch_size", "weight_decay", "freeze_bn", "mode")
        for c in configs:
            if not c.trains or any(getattr(c, f) != getattr(first, f) for f in same):
                raise ValueError(f"run_pack: {c.label()} cannot share a pack with {first.label()} "
                                 f"(it must train, and agree on {', '.join(same)})")
        t0 = time.perf_counter()
        datas = [composed[c.hash] if c.hash in composed else compose(c) for c in configs]
        t_data = time.perf_counter()
        records, models, members, starts = [], [], [], []
        for c, d in zip(configs, datas):
            model, trained, reused = self._start(c, d)
            records.append(self._record(c))
            models.append(model)
            starts.append((trained, reused))
            members.append(PackMember(d.stages[-1], d.val, c.method, c.lr, c.seed, dict(c.hparams),
                                      self._reference(c, d, model)))
        self.trainings += len(configs)
        t_start = time.perf_counter()
        results = train_packed(models, members, datas[0].groups, epochs=first.epochs, batch_size=first.batch_size,
                               weight_decay=first.weight_decay, freeze_bn=first.freeze_bn,
                               source_groups=datas[0].source_groups, compile_backend=self.compile_backend)
        t_train = time.perf_counter()
        # where the pack's time went (the same in each of its records): data, starting models, training
        timing = {"data": t_data - t0, "start": t_start - t_data, "train": t_train - t_start}
        share = (t_train - t0) / len(configs)
        for c, d, record, model, result, (trained, reused) in zip(configs, datas, records, models, results, starts):
            t1 = time.perf_counter()
            if isinstance(result, Diverged):
                self._fail(record, result)
            else:
                record.update(self._train_extra(c, d, model, result, trained, reused), pack=len(configs),
                              pack_seconds=timing)
                self._evaluate(record, model, d, save=c.hash in self.keep)
            self._finish(record, t1 - share, write=True)

    def _refit(self, config: RunConfig, data: RunData) -> tuple[Classifier, dict]:
        """A refitting method (DFR, AFR): the last layer of the ERM base refit on validation
        features; a method without group labels gets none."""
        base = config.base()
        model, trained, reused = self.model_of(base)
        base_record = self.store.get(base.hash)
        method = METHODS[config.method]
        val = data.val.to(self.device)
        feats = features_of(model, val.images).cpu().numpy()
        groups = val.group.cpu().numpy() if method.uses_groups else None
        fit = method.refit(feats, val.y.cpu().numpy(), groups, model.head, dict(config.hparams), config.seed)
        model.head = fit.head.to(self.device)
        held = None if fit.held_out is None else val.subset(fit.held_out)
        extra = {
            "val": base_record["val"] if held is None else evaluate(model, held, data.groups, data.train_weights,
                                                                    "held-out validation set"),
            f"val_{config.method}": evaluate(model, val, data.groups, data.train_weights, "validation set"),
            config.method: fit.info,
            "best_epoch": base_record.get("best_epoch"),
            "base": base.hash,
            "trained": trained,
            "reused": reused,
        }
        return model, extra
