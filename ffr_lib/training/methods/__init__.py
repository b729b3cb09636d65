"""Methods, one registry (base.METHODS), one file each: ERM, GroupDRO, Resampling and DFR (the
paper's), JTT and AFR (label-free: no group labels in training). Each entry holds its training
hooks and its hyperparameters with defaults and search space (base.py says how)."""

from . import afr, dfr, erm, groupdro, jtt, resampling  # noqa: F401 - each registers its method
from .afr import AFR
from .base import (
    METHODS,
    HParam,
    Method,
    RefitResult,
    group_ids,
    known_hparams,
    legacy_fields,
    make_method,
    resolve,
    search_space,
)
from .dfr import DFR
from .erm import ERM
from .groupdro import GroupDRO
from .jtt import JTT
from .resampling import Resampling

__all__ = ["AFR", "DFR", "ERM", "METHODS", "GroupDRO", "HParam", "JTT", "Method", "RefitResult", "Resampling", "group_ids",
           "known_hparams", "legacy_fields", "make_method", "resolve", "search_space"]
