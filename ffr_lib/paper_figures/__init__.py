"""The paper's figures and tables, built from stored results (notebooks 03, 04) or from the
generators and measured tables (notebook 02); `build` runs them all for `ffr figures`."""

from . import ablations, generation, mitigation, pilot, selection
from .build import ARTIFACTS, SWEEPS, build, build_all, build_notebook, notebook_meta
from .common import BUILDERS, Artifact

__all__ = ["ARTIFACTS", "BUILDERS", "SWEEPS", "Artifact", "ablations", "build", "build_all", "build_notebook",
           "generation", "mitigation", "notebook_meta", "pilot", "selection"]
