"""ffr: the reproducible companion of 'From Fake to Real' (ECCV 2024)."""

__version__ = "0.1.0"
