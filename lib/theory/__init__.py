"""Theory and measurements: closed forms, path sums, spin glasses, dominant flows, spectra,
curvature, Jacobians and the GSC, shattering statistics and dilution. Imports nothing else from lib."""
