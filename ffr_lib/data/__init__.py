"""Data: GroupedImages, biased splits, the embedded world and the paper's datasets."""

from .grouped import REAL, SYNTHETIC, DatasetSplits, GroupedImages
from .registry import DATASETS, load_dataset
from .splits import PAPER_RATIOS, TRAIN_FLOOR, VAL_FLOOR, RatioError, biased_counts, make_biased

__all__ = [
    "DATASETS",
    "PAPER_RATIOS",
    "REAL",
    "SYNTHETIC",
    "TRAIN_FLOOR",
    "VAL_FLOOR",
    "DatasetSplits",
    "GroupedImages",
    "RatioError",
    "biased_counts",
    "load_dataset",
    "make_biased",
]
