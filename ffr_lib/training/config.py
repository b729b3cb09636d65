"""RunConfig: one training run as a frozen dataclass of plain values; its hash names it.

A run is a node of a DAG. Its `canonical()` form resets the fields that cannot change its
result (the generator of a run without synthetic data, the earlier-stage settings of a
one-stage run ...), so two configs that train the same thing share one hash and one record.
A multi-stage run (FFR) depends on its `prefix()` run, whose checkpoint it starts from; a
refitting run (DFR, AFR) depends on the ERM run of the same mode and lr, whose features it
refits on. A method's hyperparameters are a method-scoped mapping (`hparams`), declared with
their defaults and search spaces by the method itself (ffr_lib.training.methods).
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from .methods import METHODS, known_hparams, legacy_fields, resolve

MODE_NAMES = ("none", "usb", "asb", "ffr")
METHOD_NAMES = tuple(METHODS.names())
# FFR stage orders (ECCV table 1): 1 = synthetic, 2 = real; "1-2" is FFR itself
ORDERS = ("1-2", "1", "2", "2-1")
STAGE_DATA = {"1": "synthetic", "2": "real"}


@dataclass(frozen=True)
class RunConfig:
    """Everything that decides one run's result (and nothing that does not)."""

    dataset: str = "shapes-binary"  # name in ffr_lib.data.DATASETS
    data: tuple[tuple[str, Any], ...] = ()  # loader options as (name, value) pairs, e.g. world pool sizes
    ratio: float = 0.99  # bias ratio of the real training and validation splits
    mode: str = "none"  # none | usb | asb | ffr: which data each stage trains on
    method: str = "erm"  # name in ffr_lib.training.methods.METHODS: how the (last) stage trains or refits
    hparams: tuple[tuple[str, Any], ...] = ()  # the method's hyperparameters as (name, value) pairs (or a dict)
    lr: float = 1e-3  # Adam learning rate of the last stage (DFR: the lr of its ERM base)
    seed: int = 0  # seeds the split, the synthetic set, the initialisation and the batches
    epochs: int = 20  # epochs of the last stage; the best one by validation WA is kept
    batch_size: int = 128
    weight_decay: float = 1e-5  # Adam weight decay (the authors' default)
    model: str = "resnet-small"  # name in ffr_lib.training.models.MODELS
    width: int = 32  # base width of the small models (ignored by torchvision's)
    pretrained: bool = True  # ImageNet weights where the model has them and they are on disk
    freeze_bn: bool = False  # FFR stage 2: model in eval mode, BN statistics frozen, affine trained
    order: str = "1-2"  # FFR stage order: 1-2 (FFR), 1 (synthetic only), 2 (real only), 2-1
    pre_lr: float | None = None  # lr of the earlier stage of a two-stage run (None: lr)
    pre_epochs: int | None = None  # epochs of the earlier stage (None: epochs)
    generator: str = "procedural"  # synthetic source: procedural (embedded world) | disk
    fingerprint: float = 0.0  # procedural generator: detectable artifacts in [0, 1]
    fidelity: float = 0.0  # procedural generator: content departures in [0, 1]
    recipe: str = "balanced"  # synthetic counts for ASB/FFR: balanced | biased | agnostic | scaled
    scale: float = 1.0  # recipe 'scaled': synthetic total as a multiple of the real set's size
    corruption: int = 0  # ECCV table 4: severity 0-5 of pixelate+defocus+noise on every synthetic image
    val_floor: int = 10  # validation keeps >= this many images per (y, b) group (the authors' 10; world profiles 50)

    def __post_init__(self) -> None:
        if self.mode not in MODE_NAMES:
            raise ValueError(f"RunConfig.mode: unknown {self.mode!r}; known: {', '.join(MODE_NAMES)}")
        if self.method not in METHOD_NAMES:
            raise ValueError(f"RunConfig.method: unknown {self.method!r}; known: {', '.join(METHOD_NAMES)}")
        if self.order not in ORDERS:
            raise ValueError(f"RunConfig.order: unknown {self.order!r}; known: {', '.join(ORDERS)}")
        if not 0.5 <= self.ratio < 1:
            raise ValueError(f"RunConfig.ratio must be in [0.5, 1), got {self.ratio}")
        for name in ("lr", "weight_decay"):
            if getattr(self, name) < 0:
                raise ValueError(f"RunConfig.{name} must be >= 0, got {getattr(self, name)}")
        if self.corruption not in range(6):
            raise ValueError(f"RunConfig.corruption must be a severity in 0..5, got {self.corruption!r}")
        if self.val_floor < 1:
            raise ValueError(f"RunConfig.val_floor must be >= 1, got {self.val_floor}")
        if self.epochs < 1 or self.batch_size < 1:
            raise ValueError(f"RunConfig.epochs and batch_size must be >= 1, got {self.epochs}, {self.batch_size}")
        # one order for the loader options and hyperparameters, so that equal ones hash equally
        object.__setattr__(self, "data", tuple(sorted((str(k), v) for k, v in dict(self.data).items())))
        hparams = dict(self.hparams)
        unknown = sorted(set(hparams) - set(known_hparams()))
        if unknown:
            known = ", ".join(f"{n} ({'/'.join(m)})" for n, m in sorted(known_hparams().items()))
            raise ValueError(f"RunConfig.hparams: unknown hyperparameter(s) {', '.join(unknown)}; known: {known}")
        mine = {k: v for k, v in hparams.items() if k in METHODS[self.method].hparams}
        resolve(self.method, mine)  # checks this method's values (type, minimum)
        object.__setattr__(self, "hparams", tuple(sorted(hparams.items())))

    # -- structure ---------------------------------------------------------------------
    @property
    def stages(self) -> tuple[str, ...]:
        """Training data of each stage: 'real', 'synthetic', 'usb' or 'asb'."""
        if self.mode == "ffr":
            return tuple(STAGE_DATA[s] for s in self.order.split("-"))
        return {"none": ("real",), "usb": ("usb",), "asb": ("asb",)}[self.mode]

    @property
    def uses_synthetic(self) -> bool:
        return any(s != "real" for s in self.stages)

    def canonical(self) -> RunConfig:
        """The same run with every field that cannot change its result reset to its default.
        Kept on the instance after the first call (the config is frozen), as is `hash`: a grid
        of 15,000 runs asks for them hundreds of thousands of times while it plans."""
        cached = self.__dict__.get("_canonical")
        if cached is not None:
            return cached
        c = self._canonical_uncached()
        object.__setattr__(self, "_canonical", c)
        object.__setattr__(c, "_canonical", c)
        return c

    def _canonical_uncached(self) -> RunConfig:
        c = self
        default = RunConfig()
        if c.mode == "ffr" and c.order == "2":  # stage 2 alone is training on real data: mode None
            c = replace(c, mode="none")
        if c.mode != "ffr":
            c = replace(c, order=default.order)
        if not c.uses_synthetic:
            c = replace(
                c, generator=default.generator, fingerprint=0.0, fidelity=0.0, recipe=default.recipe, scale=1.0,
                corruption=0,
            )
        elif c.generator != "procedural":
            c = replace(c, fingerprint=0.0, fidelity=0.0)
        if c.mode == "usb" or c.recipe != "scaled":  # USB's counts are fixed; scale only for 'scaled'
            c = replace(c, scale=1.0)
        if c.mode == "usb":
            c = replace(c, recipe=default.recipe)
        if len(c.stages) == 1:
            c = replace(c, pre_lr=None, pre_epochs=None, freeze_bn=False)
        else:
            c = replace(
                c,
                pre_lr=c.lr if c.pre_lr is None else c.pre_lr,
                pre_epochs=c.epochs if c.pre_epochs is None else c.pre_epochs,
            )
        c = replace(c, hparams=tuple(resolve(c.method, dict(c.hparams)).items()))  # this method's, all of them
        if c.model not in SMALL_MODELS:
            c = replace(c, width=default.width)
        else:
            c = replace(c, pretrained=default.pretrained)
        return c

    def prefix(self) -> RunConfig | None:
        """The run whose final model the last stage starts from (None for one-stage runs).

        FFR 1-2: the synthetic-only run ('1') with the earlier stage's lr and epochs and ERM;
        FFR 2-1: the ERM run of mode None. Either is an ordinary run with its own record.
        """
        c = self.canonical()
        if len(c.stages) == 1:
            return None
        first = c.order.split("-")[0]
        return replace(
            c,
            mode="ffr" if first == "1" else "none",
            order=first if first == "1" else RunConfig().order,
            method="erm",
            hparams=(),
            lr=c.pre_lr,
            epochs=c.pre_epochs,
        ).canonical()

    def base(self) -> RunConfig | None:
        """A refitting method (DFR, AFR): the ERM run of the same mode and lr whose penultimate
        features it refits on; None for a method that trains."""
        c = self.canonical()
        return None if c.trains else replace(c, method="erm", hparams=()).canonical()

    def dependencies(self) -> list[RunConfig]:
        """Runs whose checkpoints this run needs (trained first, cached, reused)."""
        if not self.trains:
            return [self.base()]
        p = self.prefix()
        return [] if p is None else [p]

    @property
    def trains(self) -> bool:
        """Whether the last step is a network training (DFR and AFR only refit a linear head)."""
        return METHODS[self.method].trains

    # -- identity ----------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Plain values; fields added after records existed (ADDED_FIELDS) are left out at their
        default, so older configs keep their hash and record. `hparams` is a {name: value} dict;
        a hyperparameter that was a flat field before issue #24 (GroupDRO's step: `dro_step`)
        stays that field, and every config writes it (its default where another method runs),
        as every stored record has it."""
        d = asdict(self)
        d["data"] = [list(p) for p in self.data]
        hparams = dict(self.hparams)
        for field_name, (method, name, default) in legacy_fields().items():
            d[field_name] = hparams.pop(name) if self.method == method and name in hparams else default
        d["hparams"] = dict(sorted(hparams.items()))
        for name, default in ADDED_FIELDS.items():
            if d[name] == default:
                del d[name]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RunConfig:
        """The config of to_dict's form (and of every stored record: `dro_step` and the like are
        read back into their method's hparams)."""
        d = dict(d)
        hparams = dict(d.pop("hparams", {}) or {})
        for field_name, (method, name, _) in legacy_fields().items():
            if field_name in d:
                value = d.pop(field_name)
                if d.get("method", cls.method) == method:
                    hparams[name] = value
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"RunConfig: unknown field(s) {', '.join(unknown)}")
        if "data" in d:
            d["data"] = tuple((k, v) for k, v in d["data"])
        return cls(**d, hparams=tuple(hparams.items()))

    @property
    def hash(self) -> str:
        """12 hex digits of the SHA-1 of the canonical config's sorted JSON."""
        cached = self.__dict__.get("_hash")
        if cached is None:
            text = json.dumps(self.canonical().to_dict(), sort_keys=True, separators=(",", ":"))
            cached = hashlib.sha1(text.encode()).hexdigest()[:12]
            object.__setattr__(self, "_hash", cached)
        return cached

    def cell(self) -> dict[str, Any]:
        """The fields that define a table cell: all but the seed and the tuned hyperparameters
        (the method's hyperparameters among them)."""
        d = self.canonical().to_dict()
        for k in ("seed", *TUNED, *legacy_fields()):
            d.pop(k, None)
        return d

    def label(self) -> str:
        """Short human-readable name for progress bars and logs."""
        c = self.canonical()
        mode = c.mode if c.mode != "ffr" or c.order == "1-2" else f"ffr[{c.order}]"
        extra = ",frozen-bn" if c.freeze_bn else ""
        specs = METHODS[c.method].hparams
        changed = [f"{k}={_short(v)}" for k, v in c.hparams if v != specs[k].default]
        method = f"{c.method}[{','.join(changed)}]" if changed else c.method
        return f"{c.dataset} r={c.ratio:g} {mode}/{method} lr={c.lr:g}{extra} s={c.seed}"


def labels(configs: Sequence[RunConfig]) -> list[str]:
    """Each config's label(), followed by what sets it apart in `configs`: every field label() does
    not show (model, recipe, corruption, the generator's knobs, ...) whose value differs from the
    list's most common one and matters to this run (would change its canonical form). Two runs
    of one list that differ never share a label; pass the whole grid to label some of its runs."""
    canonical = [c.canonical() for c in configs]
    common = {}
    for f in fields(RunConfig):
        if f.name not in LABEL_FIELDS:
            counts = Counter(getattr(c, f.name) for c in canonical)
            if len(counts) > 1:
                common[f.name] = counts.most_common(1)[0][0]
    out = []
    for c in canonical:
        shown = [name for name, value in common.items()
                 if getattr(c, name) != value and replace(c, **{name: value}).canonical() != c]
        out.append(c.label() + "".join(f" {n}={_short(getattr(c, n))}" for n in shown))
    return out


def _short(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


SMALL_MODELS = ("resnet-small", "vit-small")
# the fields label() shows
LABEL_FIELDS = ("dataset", "ratio", "mode", "order", "method", "hparams", "lr", "freeze_bn", "seed")
# fields added after stores of records existed -> their default (left out of to_dict and the hash there)
ADDED_FIELDS = {"corruption": 0, "val_floor": 10, "hparams": {}}
# hyperparameters chosen per cell by model selection (the rest of the config is the cell); a
# method's own (`hparams`) are flattened into hp_<name> columns of a records frame
TUNED = ("lr", "freeze_bn", "pre_lr", "weight_decay", "hparams")
