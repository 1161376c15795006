"""lib.experiments.gradient_covariance and the §4-§5 helpers moved out of the path-sum chapter."""

import math

import numpy as np
import torch

from lib.experiments import gradient_covariance as GC
from lib.experiments import trainability
from lib.theory import path_sums as PS
from lib.theory import shattering as S


def test_families_and_their_paper_moments():
    fams = GC.families([0.1, 0.5])
    names = [f[0] for f in fams]
    assert names[:6] == ["feedforward", "feedforward + centring", "feedforward + BN", "resnet a = b = 1",
                         "resnet a = b = 1/sqrt2", "highway g2^2 = 1/L"] and names[6:] == ["BN resnet beta = 0.1", "BN resnet beta = 0.5"]
    ab = {n: f for n, _, _, f in fams}
    assert ab["highway g2^2 = 1/L"](4) == (math.sqrt(3 / 4), 0.5) and ab["BN resnet beta = 0.5"](7) == (1.0, 0.5)


def test_real_network_moments_records_the_papers_prediction_and_ours():
    g = torch.Generator().manual_seed(0)
    c0 = GC.input_pair_correlations(32, generator=g)
    assert c0.shape == (400 * 399 // 40,) and abs(c0.mean()) < 0.05 and 0.1 < c0.std() < 0.25   # ~ N(0, 1/32)
    res = GC.real_network_moments(GC.families([0.5]), [2], batch=8, width=32, n_networks=6, c0=c0, generator=g)
    q = res["BN resnet beta = 0.5", 2]
    v, c = PS.resnet_bn_moments(3, 0.5)
    assert q["paper_var"] == v and abs(q["paper_corr"] - c / v) < 1e-15
    assert res["feedforward + BN", 2]["ours"] is None and 0 < res["feedforward", 2]["ours"] < 1
    assert q["se_var"] > 0 and q["act"].shape == (2,)


def test_per_layer_factors_and_delta_method():
    res = {("f", 2): dict(var=4.0, se_var=0.4, paper_var=1.0), ("f", 4): dict(var=16.0, se_var=1.6, paper_var=1.0)}
    ds, f, fp, se = GC.per_layer(res, "f", "var", [2, 4])
    assert ds == [2, 4] and np.allclose(f, [2.0, 2.0]) and np.allclose(fp, 1.0)
    assert np.allclose(se, [2.0 * 0.1 / 2, 2.0 * 0.1 / 4])          # d(q^(1/L)) = q^(1/L) dq / (q L)


def test_per_layer_comparison_tolerance_and_resolved_depths():
    res = {("f", 2): dict(corr=0.25, se_corr=0.01, paper_corr=0.25), ("f", 4): dict(corr=0.01, se_corr=0.01, paper_corr=1 / 16)}
    kw = GC.per_layer_comparison(res, "f", "corr", [2, 4], allow=(0.03, "1/M"))
    assert np.allclose(kw["measured"], [0.5, 0.01 ** 0.25]) and np.allclose(kw["expected"], 0.5)
    assert np.allclose(kw["tol"], 4 * kw["se"] + 0.03) and "1/M" in kw["note"]
    kw = GC.per_layer_comparison(res, "f", "corr", [2, 4], resolved_only=True)   # depth 4: 0.01 is 1 s.e., dropped
    assert np.allclose(kw["measured"], [0.5]) and np.allclose(kw["tol"], 4 * 0.5 * 0.01 / 0.25 / 2)
    kw = GC.per_layer_comparison(res, "f", "corr", [2], above=True)
    assert kw["relation"] == "ge" and kw["tol"] == 0.0 and np.allclose(kw["expected"], 0.5 + 4 * kw["se"])


def test_corrected_comparison():
    f, se = np.array([1.10, 1.20]), np.array([0.01, 0.01])
    kw = GC.corrected_comparison((f, se, np.array([1.1, 1.21]), np.array([1.0, 1.0])), allow=(0.005, "1/N"))
    assert np.allclose(kw["tol"], 0.045) and kw["paper_value"] == [1.0, 1.0] and kw["outcome"] == "confirmed with a correction"
    assert "0.2" in kw["note"] and "0.01" in kw["note"]          # |measured - paper| 0.2, |measured - ours| 0.01


def test_looks_linear_net_is_linear_then_first_order_nonlinear():
    ll = trainability.looks_linear_test(6, 16, torch.linspace(-2, 2, 64), generator=torch.Generator().manual_seed(1))
    assert ll.err_linear < 1e-12 * max(1.0, ll.scale_linear) and ll.spread < 1e-12
    nl = ll.nonlinearity
    assert nl[0] < 1e-12 and abs(nl[1] - 1e-4) < 1e-5 and abs(nl[2] / nl[1] - 2) < 1e-3 and abs(nl[4] / nl[2] - 2) < 1e-3


def test_activation_rasters_and_paired_mean_se():
    g = torch.Generator().manual_seed(2)
    r = S.activation_rasters(torch.linspace(-1, 1, 20), {"ff": ("ff", "none", 1.0), "res": ("res", "bn", 1.0)}, 3, 2, 8,
                             generator=g)
    assert r["ff"].shape == (2, 20, 8) and r["ff"].dtype == torch.bool
    stats = {("a", 1): {"k": np.array([1.0, 2.0, 3.0])}, ("b", 1): {"k": np.array([0.0, 0.0, 1.0])}}
    m, se = S.paired_mean_se(stats, "k", "a", 1, minus="b")
    assert abs(m - 5 / 3) < 1e-15 and abs(se - math.sqrt(1 / 3) / math.sqrt(3)) < 1e-15   # differences 1, 2, 2


def test_shallow_gradient_is_brownian_in_t():
    bt = GC.shallow_gradient_brownian(64, 400, 128, generator=torch.Generator().manual_seed(0))
    assert bt.z_cov < 4.5
    assert np.all(np.abs(bt.kl_var - bt.kl_exact) <= 4 * bt.kl_se + np.abs(bt.kl_discretised - bt.kl_exact))
    assert np.allclose(bt.kl_exact, 1 / ((np.arange(1, 6) - 0.5) ** 2 * np.pi ** 2))


def test_lemma_a1_monte_carlo_agrees_with_the_model_and_sees_a_wrong_one(monkeypatch):
    from lib.experiments import gradient_covariance as GC
    from lib.theory import path_sums as PS

    rows, z = GC.lemma_a1_monte_carlo(8, 4, 20_000, generator=torch.Generator().manual_seed(0))
    assert len(rows) == 12 and [r["moment"] for r in rows[:3]] == ["mean", "var", "cov"] and z < 4.5
    coactive = PS.coactive_paths
    monkeypatch.setattr(PS, "coactive_paths", lambda A, B: 1.3 * coactive(A, B))
    assert GC.lemma_a1_monte_carlo(8, 4, 20_000, generator=torch.Generator().manual_seed(0))[1] > 10


def test_lemma_a2_three_ways_agree():
    from lib.experiments import gradient_covariance as GC

    auto, paths, listed = GC.lemma_a2_three_ways(3, 2, generator=torch.Generator().manual_seed(1))
    assert auto.shape == (3,) and np.all(auto != 0)
    assert np.allclose(auto, paths, atol=1e-12) and np.allclose(auto, listed, atol=1e-12)


def test_grid_gradients_and_their_autocorrelation_by_depth():
    from lib.experiments import gradient_covariance as GC

    grid = torch.linspace(-2, 2, 64)
    g = GC.grid_gradients_of_random_nets(grid, "ff", 3, 4, 16, norm="none", generator=torch.Generator().manual_seed(2))
    assert g.shape == (4, 64)
    acf, lag1 = GC.autocorrelation_by_depth(grid, {"ff": ("ff", "none", 1.0), "res": ("res", "bn", 1.0)}, [1, 8], 5,
                                            n_networks=6, width=16, generator=torch.Generator().manual_seed(3))
    assert set(acf) == set(lag1) == {(f, L) for f in ("ff", "res") for L in (1, 8)}
    assert all(a.shape == (6,) and abs(a[0] - 1) < 1e-5 for a in acf.values())
    assert lag1[("ff", 1)][0] > lag1[("ff", 8)][0]                    # shattering: deeper feedforward nets decorrelate


def _fake_results(betas, depths):
    out = {}
    for b in betas:
        for L in depths:
            out[f"BN resnet beta = {b:g}", L] = dict(var=1 + b * b * L, se_var=0.01, paper_var=1 + b * b * L,
                                                      corr=0.5 / (1 + b * L), se_corr=0.01, paper_corr=0.5 / (1 + b * L))
    return out


def test_bn_resnet_per_layer_factors():
    res = _fake_results([0.1, 1.0], [2, 4])
    out = GC.bn_resnet_per_layer(res, [0.1, 1.0], [2, 4], batch=32)
    f, se, ours, paper = out["var"]
    assert f.shape == se.shape == ours.shape == paper.shape == (4,)
    assert np.allclose(f, [(1 + 0.01 * 2) ** 0.5, (1 + 0.01 * 4) ** 0.25, 3 ** 0.5, 5 ** 0.25])
    assert np.allclose(f, paper)                        # measured = the paper's values in this fake
    assert np.allclose(se, f * 0.01 / np.array([1.02, 1.04, 3, 5]) / np.array([2, 4, 2, 4]))
    assert set(out["ours"]) == {(0.1, 2), (0.1, 4), (1.0, 2), (1.0, 4)}
    v, c = out["ours"][1.0, 4]
    assert np.isclose(out["corr"][2][-1], (c / v) ** 0.25)


def test_adjacent_differences_in_order_with_their_errors():
    res = {("a", 1): dict(corr=0.9, se_corr=0.03), ("b", 1): dict(corr=0.5, se_corr=0.04), ("c", 1): dict(corr=0.1, se_corr=0.0)}
    d = GC.adjacent_differences(res, ["a", "b", "c"], [1])
    assert np.allclose(d, [(0.4, 0.05), (0.4, 0.04)])


def test_fig1_gradients_panels():
    grid = torch.linspace(-2, 2, 16)
    p = GC.fig1_gradients(grid, width=8, n_networks=3, seed=5, generator=torch.Generator().manual_seed(2))
    assert list(p) == ["shallow (b ~ N(0,1))", "feedforward, 24 layers", "resnet, 50 layers, beta = 0.1", "brown noise", "white noise"]
    assert all(v.shape == (3, 16) and v.dtype == torch.float32 for v in p.values())
    assert torch.equal(p["white noise"], S.white_noise(3, 16, generator=torch.Generator().manual_seed(6)).float())


def test_moments_table_and_reference_autocorrelations():
    res = {("ff", 2): dict(var=1.0, se_var=0.1, paper_var=1.0, ps_var=1.1, corr=0.5, se_corr=0.01, paper_corr=0.25, ps_corr=0.5,
                           ours=None),
           ("res", 2): dict(var=4.0, se_var=0.1, paper_var=4.0, ps_var=4.0, corr=0.5, se_corr=0.01, paper_corr=0.56, ps_corr=0.5,
                            ours=0.51)}
    rows = GC.moments_table(res)
    assert [r["architecture"] for r in rows] == ["ff", "res"] and rows[1]["correlation: measured · paper · path-sum* · ours"].endswith("0.5100")
    p = GC.fig1_gradients(torch.linspace(-1, 1, 64), width=8, n_networks=4, seed=1, generator=torch.Generator().manual_seed(3))
    acf = GC.reference_autocorrelations(p, 5)
    assert set(acf) == {"white", "brown", "shallow"} and all(v.shape == (6,) and abs(v[0] - 1) < 1e-5 for v in acf.values())
    assert acf["brown"][1] > 0.5 > abs(acf["white"][1])
