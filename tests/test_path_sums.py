"""lib.theory.path_sums: path-sums by matrix products against enumeration, Lemma A1 by Monte Carlo, closed forms."""

import itertools
import math

import numpy as np
import pytest
import torch

from lib.theory import path_sums as PS

DT = torch.float64


def g(s=0):
    return torch.Generator().manual_seed(s)


def test_path_sum_equals_enumeration():
    N, L = 3, 4
    A = (torch.rand(N, L, generator=g()) > 0.4).to(DT)
    W = torch.randn(2, L - 1, N, N, generator=g(1), dtype=DT)
    ref = torch.zeros(2, dtype=DT)
    count = 0
    for path in itertools.product(range(N), repeat=L):
        if all(A[path[l], l] for l in range(L)):
            count += 1
            ref += torch.tensor([math.prod(W[s, l, path[l], path[l + 1]].item() for l in range(L - 1)) for s in range(2)], dtype=DT)
    torch.testing.assert_close(PS.path_sum(A, W), ref)
    assert PS.coactive_paths(A, A).item() == count


def test_lemma_a1_covariance_monte_carlo():
    N, L, S = 8, 4, 200_000
    A, B = PS.typical_configurations(N, L, generator=g(2))
    assert PS.coactive_paths(A, A).item() == (N / 2) ** L and PS.coactive_paths(A, B).item() == (N / 4) ** L
    sigma2 = 2.0 / N
    W = torch.randn(S, L - 1, N, N, generator=g(3), dtype=DT) * math.sqrt(sigma2)
    pa, pb = PS.path_sum(A, W), PS.path_sum(B, W)
    prod = pa * pb
    expected = PS.coactive_paths(A, B).item() * sigma2 ** (L - 1)
    assert abs(prod.mean().item() - expected) < 4 * prod.std().item() / math.sqrt(S)
    assert abs(pa.mean().item()) < 4 * pa.std().item() / math.sqrt(S)


def test_theorem3_closed_form_and_paper_numbers():
    for L in (2, 10, 100, 1000):
        for beta in (0.1, 0.5, 1.0, 2.0):
            v, c = PS.resnet_bn_moments(L, beta)
            vp, cp = PS.resnet_bn_product(L, beta)
            assert v == pytest.approx(vp, rel=1e-12) and c == pytest.approx(cp, rel=1e-10)
    v, c = PS.resnet_bn_moments(100, 0.1)
    assert c / v == pytest.approx(0.7, abs=0.01)        # "beta = 0.1 on 100 layers gives 0.7"
    v, c = PS.resnet_bn_moments(100, 1.0)
    assert c / v == pytest.approx(0.11, abs=0.01)       # "beta = 1 gives 0.1"


def test_highway_and_feedforward():
    L = 10_000
    assert PS.highway_moments(L, math.sqrt(1 / L))[1] == pytest.approx(math.exp(-0.5), rel=1e-4)
    assert PS.feedforward_moments(5) == (1.0, 1 / 32)
    assert PS.resnet_moments(4) == (16.0, 1.5**4)


def test_subset_sums_and_closed_form_error():
    from lib.theory import path_sums as PS

    assert PS.subset_sum_mismatches(12, 8) == 0 and PS.subset_sum_mismatches(3, 4) == 0
    assert PS.resnet_bn_closed_form_error([1, 10, 100], [0.1, 1.0]) < 1e-12


def test_enumeration_errors_are_zero_and_see_a_wrong_path_sum(monkeypatch):
    bad, err = PS.enumeration_errors([(2, 4), (3, 3)], generator=torch.Generator().manual_seed(1))
    assert bad == 0 and err < 1e-13
    real = PS.path_sum
    monkeypatch.setattr(PS, "path_sum", lambda A, W: real(A, W) * 1.001)
    assert PS.enumeration_errors([(2, 4), (3, 3)], generator=torch.Generator().manual_seed(1))[1] > 1e-4


def test_resnet_bn_correlation_and_sqrt_growth():
    v, c = PS.resnet_bn_moments(100, 0.1)
    assert PS.resnet_bn_correlation(100, 0.1) == c / v
    Ls = np.unique(np.logspace(0.5, 4, 30).astype(int))
    g = PS.sqrt_growth(Ls)
    assert g["rel_fit"].shape == g["ratio_2L"].shape == Ls.shape
    assert abs(g["slope"] + 1) < 0.05                                      # the error of sqrt(4(L+1)/pi) is ~5/(8L)
    assert abs(g["ratio_2L"][-1] - math.sqrt(math.pi / 2)) < 1e-2          # sqrt(2L) / exact -> sqrt(pi / 2)
