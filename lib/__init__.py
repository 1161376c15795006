"""Shared library of the executable book on skip connections, in four layers (imports point down
only; ``tests/test_layers.py`` keeps it so):

- :mod:`lib.machinery` -- the book's machinery: parameters and profiles, the chapter registry, the
  runner and the seed sweep, checks and the claims ledger, errata, figures, the browser check, the
  benchmark and the mutation run;
- :mod:`lib.experiments` -- the chapters' experiments, named by concept (a table pass, a training
  comparison);
- :mod:`lib.nets` -- networks and data: fully connected and convolutional builders, training,
  datasets;
- :mod:`lib.theory` -- theory and measurements: closed forms, path sums, spin glasses, dominant
  flows, spectra, curvature, Jacobians and the GSC, shattering statistics, dilution.

Chapters import it as ``import lib`` and use ``lib.setup`` (run set-up), ``lib.check`` and its
relatives (claims ledger), ``lib.Arch``/``lib.Net`` and the layers by their full names
(``lib.theory.measure.gsc``).
"""

from . import experiments, machinery, nets, theory
from .machinery import chapters, checks, errata, plotting, runtime, spec
from .machinery.checks import (CONTEXT_ONLY, NOT_ATTEMPTED, NOT_RESOLVED, check, check_above_zero, check_difference,
                               check_remaining, check_table, claims_table, inventory, k_family, k_sigma, remaining_error,
                               reproduced_table, roundoff_tol, se_tol, standard_error, welch)
from .machinery.runtime import setup
from .nets import convnets, data, models, training
from .nets.models import Arch, Net
from .theory import (curvature, dilution, dominant_flow, ensembles, linear_nets, maps, measure, path_sums, shattering,
                     spectrum, spin_glass)

__all__ = [
    "CONTEXT_ONLY", "NOT_ATTEMPTED", "NOT_RESOLVED", "Arch", "Net", "check", "check_above_zero", "check_difference", "check_remaining",
    "check_table", "claims_table",
    "experiments", "inventory", "k_family", "k_sigma", "machinery", "nets", "remaining_error", "reproduced_table",
    "roundoff_tol", "se_tol", "setup", "standard_error", "theory", "welch",
]

# A mutation named by BOOK_MUTATION (``python -m lib mutate``) is applied when a chapter imports lib.
from .machinery import mutations as _mutations  # noqa: E402

_mutations.apply_from_env()
