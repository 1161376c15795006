"""Shared library of the executable book on skip connections.

Chapters import it as ``import lib`` and use ``lib.setup`` (runtime), ``lib.check`` (claims
ledger), ``lib.models``, ``lib.measure``, ``lib.data``, ``lib.training`` and ``lib.plotting``.
"""

from . import chapters, checks, curvature, data, errata, linear_nets, measure, models, plotting, runtime, spectrum, training
from .checks import NOT_RESOLVED, check, check_remaining, remaining_error, inventory, reproduced_table, check_difference, check_table, claims_table, k_family, k_sigma, roundoff_tol, se_tol, standard_error
from .models import Arch, Net
from .runtime import setup

__all__ = [
    "NOT_RESOLVED", "Arch", "Net", "chapters", "check", "check_remaining", "remaining_error", "inventory", "reproduced_table", "check_difference", "check_table", "checks", "claims_table", "k_family", "k_sigma", "curvature", "data", "errata", "linear_nets", "measure", "models",
    "plotting", "roundoff_tol", "runtime", "se_tol", "setup", "spectrum", "standard_error", "training",
]

# A mutation named by BOOK_MUTATION (``python -m lib mutate``) is applied when a chapter imports lib.
from . import mutations as _mutations  # noqa: E402

_mutations.apply_from_env()
