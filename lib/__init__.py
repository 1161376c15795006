"""Shared library of the executable book on skip connections.

Chapters import it as ``import lib`` and use ``lib.setup`` (runtime), ``lib.check`` (claims
ledger), ``lib.models``, ``lib.measure``, ``lib.data``, ``lib.training`` and ``lib.plotting``.
"""

from . import chapters, checks, data, measure, models, plotting, runtime, training
from .checks import check, claims_table, roundoff_tol, se_tol, standard_error
from .models import Arch, Net
from .runtime import setup

__all__ = [
    "Arch", "Net", "chapters", "check", "checks", "claims_table", "data", "measure", "models",
    "plotting", "roundoff_tol", "runtime", "se_tol", "setup", "standard_error", "training",
]
