"""Networks and data: the fully connected and convolutional builders, training loops and the
datasets. Imports only :mod:`lib.theory` (random weight ensembles, nonlinearities)."""
