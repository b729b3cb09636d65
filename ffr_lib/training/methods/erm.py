"""ERM: shuffled batches, mean cross-entropy (the hooks of methods.base.Method, unchanged)."""

from __future__ import annotations

from .base import METHODS, Method


@METHODS.register("erm")
class ERM(Method):
    """Empirical risk minimisation; reads no group labels."""

    name = "erm"
    uses_groups = False
