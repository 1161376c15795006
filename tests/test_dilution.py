"""lib.theory.dilution: Table 1 networks and metrics, the dilution formulas."""

import math

import numpy as np
import pytest
import torch

from lib.nets import data as Ld
from lib.theory import dilution as D
from lib.experiments import gsc_tables
from lib.theory.measure import qm_norm

DT = torch.float64


def g(s=0):
    return torch.Generator().manual_seed(s)


def test_arch_validation_and_widths():
    with pytest.raises(ValueError, match="nonlin"):
        D.TableArch("softplus")
    with pytest.raises(ValueError, match="looks-linear"):
        D.TableArch("tanh", matrix="looks-linear")
    assert D.TableArch("relu", width="100/200", depth=6, d=10).widths() == [20, 10, 20, 10, 20, 10]
    assert D.TableArch("relu", skip="identity", depth=6, d=10).n_linear == 7


def test_gsc_matches_definition_per_layer():
    """GSC(l, 0) from metrics() equals Q_D||df0/df_l||/sqrt(d) Q_D||f_l|| / Q_D|f0| computed by hand."""
    arch = D.TableArch("tanh", "layer", depth=4, d=8)
    ws, sk = D.init_weights(arch, 2, generator=g(), dtype=DT)
    x, y = Ld.gaussian_noise(2, 50, 8, 8, generator=g(1), dtype=DT)
    m = D.metrics(arch, ws, sk, x, y)
    ops = D.program(arch)
    w1 = [w[1] for w in ws]
    f1 = D.run_program(arch, ops, w1, x[1], stop=1)                  # f_L for network 1
    rest = lambda h, yy: (D.run_program(arch, ops, w1, h, start=1) * yy).sum(-1)
    grads = torch.func.vmap(torch.func.grad(rest))(f1, y[1])
    f0 = torch.func.vmap(rest)(f1, y[1])
    q = lambda t: t.pow(2).mean().sqrt()
    gsc = q(grads.norm(dim=-1) / math.sqrt(8)) * q(f1.norm(dim=-1)) / q(f0)
    assert m["gsc"][1, 0].item() == pytest.approx(gsc.item(), rel=1e-10)


def test_looks_linear_network_is_linear_and_gsc_flat():
    arch = D.TableArch("relu", "none", "looks-linear", depth=6, d=8)
    ws, sk = D.init_weights(arch, 1, generator=g(2), dtype=DT)
    x, y = Ld.gaussian_noise(1, 30, 8, 8, generator=g(3), dtype=DT)
    layers, *_ = D.forward(arch, ws, sk, x)
    out = layers[-1][0]
    lin = torch.linalg.lstsq(x[0], out).solution
    assert (x[0] @ lin - out).abs().max() < 1e-12


def test_dilution_formulas():
    assert D.diluted_rate(1.0, 2.0) == pytest.approx(1.0)
    assert D.diluted_rate(3.0, 0.0) == pytest.approx(3.0)
    r, k = 1.3, 1.5
    assert D.diluted_rate(r, k) >= D.diluted_rate_first_order(r, k)
    assert D.undiluted_rate(D.diluted_rate_first_order(r, k), k) == pytest.approx(r)
    assert D.composed_dilution([2.0]) == pytest.approx(2.0)
    # two blocks with k = 1: (2 * 2 - 1)^(-1/2)
    assert D.composed_dilution([1.0, 1.0]) == pytest.approx(3 ** -0.5)


def test_batchnorm_rows_normalise_over_the_dataset():
    arch = D.TableArch("relu", "batch", depth=3, d=6)
    ws, sk = D.init_weights(arch, 2, generator=g(4), dtype=DT)
    x, y = Ld.gaussian_noise(2, 40, 6, 6, generator=g(5), dtype=DT)
    m = D.metrics(arch, ws, sk, x, y)
    torch.testing.assert_close(m["std"], torch.ones_like(m["std"]))
    assert (m["sign"] <= 0.5).all() and (m["sign"] > 0.3).all()


def test_taylor_expansion_error_is_third_order_in_the_weight_change():
    """T_l applies the initial functions exactly and keeps the products of two residuals, and the
    residuals of linear layers are linear in the weight change, so the error is O(|dW|^3)."""
    for arch in (D.TableArch("tanh", "layer", depth=5, d=8, d_in=6, d_out=4),
                 D.TableArch("tanh", "layer", skip="identity", depth=4, d=8, d_in=6)):
        ops = D.program(arch)
        ws0, _ = D.init_weights(arch, 1, generator=g(6), dtype=DT)
        dW = [torch.randn(w.shape, generator=g(7 + i), dtype=DT) for i, w in enumerate(ws0)]
        x = torch.randn(1, 20, 6, generator=g(8), dtype=DT)
        cuts = [j for j in range(1, len(ops) + 1) if ops[j - 1][0] == ("linear" if arch.skip == "none" else "skip")]
        errs = []
        for eps in (1e-3, 2e-3):
            ws = [w + eps * d for w, d in zip(ws0, dW)]
            full = D.run_program(arch, ops, ws, x)
            torch.testing.assert_close(D.taylor_output(arch, ops, ws0, ws, x, 1), full)   # the lowest layer is exact
            errs.append((D.taylor_output(arch, ops, ws0, ws, x, cuts[-1]) - full).abs().max().item())
        assert errs[1] / errs[0] == pytest.approx(8.0, rel=0.05)                          # third-order error


def test_effective_depth_programme_matches_the_papers_loop():
    """The vectorised programme against the pseudo-code of §D.2, one layer at a time, scalar."""
    rng = np.random.default_rng(0)
    n = 7
    is_lin = [True, False, True, True, False, False, True]
    gnorm = rng.uniform(0.5, 2.0, n)          # ||df0/df_{k+1}|| for list layer k (top down)
    rop = rng.uniform(0.0, 0.3, n)
    inn = rng.uniform(0.5, 2.0, n)
    lr = 0.1
    # as a forward-order program: list layer k (top down) is operation n - 1 - k
    ops = [("linear", 0) if l else ("act",) for l in is_lin][::-1]
    t = lambda v: torch.tensor([[v]], dtype=DT)
    res = D.effective_depth_update(ops, [t(v) for v in gnorm[::-1]], [None] * n,
                                   [torch.tensor([v], dtype=DT) for v in rop[::-1]], [t(v) for v in inn[::-1]], lr)
    out = res[::-1]
    g_paper = [1.0] + list(gnorm)             # ||df0/df_k||, k = 0 (the error) .. n
    r_paper = [0.0] + [r if l else 0.0 for r, l in zip(rop, is_lin)]
    for l in range(1, n + 1):                 # the paper's layer f_l is list layer l - 1
        if not is_lin[l - 1]:
            assert out[l - 1] is None
            continue
        arr = [1.0]
        for k in range(0, l):
            size = len(arr)
            arr.append(arr[size - 1] * r_paper[k])
            for i in range(size - 1, 0, -1):
                arr[i] = arr[i] * g_paper[k + 1] / g_paper[k] + arr[i - 1] * r_paper[k]
            arr[0] = arr[0] * g_paper[k + 1] / g_paper[k]
        for lam in range(len(arr)):
            assert out[l - 1][0, lam].item() == pytest.approx(sum(arr[lam:]) * lr * inn[l - 1], rel=1e-12)


def test_effective_depth_resnet_reduces_to_vanilla_when_the_skip_carries_nothing():
    """With the branch carrying the whole gradient (||df0/df_m|| = ||branch part||) the skip term
    vanishes and the ResNet programme equals the vanilla one over the same layers."""
    rng = np.random.default_rng(1)
    ops_res = [("linear", 0), ("start",), ("norm",), ("act",), ("linear", 1), ("skip",), ("norm",)]
    ops_van = [("linear", 0), ("act",), ("norm",), ("act",), ("linear", 1), ("act",), ("norm",)]
    n = len(ops_res)
    g_ = rng.uniform(0.5, 2.0, n)
    g_[1] = g_[0]                                     # start = the block input, same tensor as the layer below
    g_[4] = g_[5]                                     # the branch output carries the block output's gradient
    t = lambda v: torch.tensor([[v]], dtype=DT)
    rop = [torch.tensor([0.2], dtype=DT) if op[0] == "linear" else None for op in ops_res]
    inn = [t(v) for v in rng.uniform(0.5, 2.0, n)]
    branch = [None, t(g_[1]), None, None, None, None, None]
    res = D.effective_depth_update(ops_res, [t(v) for v in g_], branch, rop, inn, 0.1)
    g_van = g_.copy()
    van = D.effective_depth_update(ops_van, [t(v) for v in g_van], [None] * n, rop, inn, 0.1)
    for a_, b_ in zip(res, van):
        if a_ is not None:
            torch.testing.assert_close(a_, b_)


def test_forward_matches_program_and_blocks():
    arch = D.TableArch("tanh", "layer", skip="gaussian", depth=4, d=6)
    ws, sk = D.init_weights(arch, 2, generator=g(9), dtype=DT)
    x, _ = Ld.gaussian_noise(2, 10, 6, 6, generator=g(10), dtype=DT)
    layers, kinds, pre, blocks = D.forward(arch, ws, sk, x)
    torch.testing.assert_close(layers[-1], D.run_program(arch, D.program(arch), ws, x, skips=sk))
    assert kinds.count("skip") == len(blocks) == 2 and kinds.count("nonlin") == len(pre) == 4
    for (v, s_, r_), h in zip(blocks, [l_ for l_, k in zip(layers, kinds) if k == "skip"]):
        torch.testing.assert_close(s_ + r_, h)


def test_metrics_in_chunks_equal_metrics_at_once():
    arch = D.TableArch("relu", "batch", depth=4, d=8)
    ws, sk = D.init_weights(arch, 5, generator=g(), dtype=DT)
    x, y = Ld.gaussian_noise(5, 40, 8, 8, generator=g(1), dtype=DT)
    whole, parts = D.metrics(arch, ws, sk, x, y), D.metrics(arch, ws, sk, x, y, chunk=2)
    for k in ("gsc", "std", "sign"):
        assert torch.allclose(whole[k], parts[k], rtol=1e-12, atol=0)
    arch = D.TableArch("tanh", "layer", skip="gaussian", depth=4, d=8)
    ws, sk = D.init_weights(arch, 3, generator=g(), dtype=DT)
    assert torch.allclose(D.metrics(arch, ws, sk, x[:3], y[:3])["gsc"], D.metrics(arch, ws, sk, x[:3], y[:3], chunk=1)["gsc"], rtol=1e-12)
    whole, parts = D.block_dilution(arch, ws, sk, x[:3], y[:3]), D.block_dilution(arch, ws, sk, x[:3], y[:3], chunk=2)
    for k in whole:
        np.testing.assert_allclose(whole[k], parts[k], rtol=1e-12, atol=0)


def test_default_chunk_bounds_the_paper_scale_pass():
    """Without ``chunk`` the passes split the ensemble themselves: at the paper's 100 datasets x
    10,000 points (depth 50, width 100) a single pass would hold about 140 GB, more than one GPU has."""
    ws = [torch.empty(100, 100, 100)] * 50
    assert D.ensemble_chunk(ws, torch.empty(100, 10_000, 100)) == 8
    assert D.ensemble_chunk([torch.empty(4, 200, 100)] + ws[:49], torch.empty(4, 10_000, 100)) == 4
    assert D.ensemble_chunk(ws, torch.empty(100, 1000, 100)) == 80      # the quick profile's one pass


def test_table1_is_stored_as_printed():
    """The paper's digits survive: '1.00' is rounded to +-0.005, not read as 1.0 with +-0.5."""
    assert D.TABLE1[("relu", "batch", "gaussian", "none", "100")] == ("5728", "1.00", "0.41")
    assert D.printed_half_unit("1.00") == pytest.approx(0.005)
    assert D.printed_half_unit("0.030") == pytest.approx(0.0005)
    assert D.printed_half_unit("5728") == 0.5
    assert len(D.TABLE1) == 34 and all(isinstance(v, str) for row in D.TABLE1.values() for v in row)


@pytest.mark.parametrize("n", [1000, 10000])
def test_sign_diversity_bias_bounds_the_exact_binomial_bias(n):
    """E[min(p_hat, 1 - p_hat)] falls short of min(p, 1 - p) by at most 2 min(p, 1 - p) / sqrt(2 pi n)."""
    from scipy.stats import binom

    k = np.arange(n + 1)
    for p in np.linspace(0.002, 0.5, 60):
        pm = binom.pmf(k, n, p)
        bias = min(p, 1 - p) - np.sum(pm * np.minimum(k / n, 1 - k / n))
        assert -1e-12 <= bias <= D.sign_diversity_bias(min(p, 1 - p), n) + 1e-12
    assert D.sign_diversity_bias(0.5, n) == pytest.approx((2 * math.pi * n) ** -0.5)


def test_table1_comparison_cells():
    key_bn = ("relu", "batch", "gaussian", "none", "100")
    key = ("tanh", "layer", "gaussian", "none", "100")
    q = dict(gsc=72.0, se_gsc=0.72, sd_gsc=2.16, std=1.0, se_std=1e-4, sign=0.49, se_sign=0.002)
    key_heavy = ("relu", "none", "gaussian", "none", "100")
    out = D.table1_comparison({key: q, key_bn: dict(q, gsc=6000.0), key_heavy: dict(q, gsc=1.5)}, 8, 1000, 5.0, "GSC")
    assert out["cells"] == ["tanh/layer/gaussian/none/100: GSC", "relu/batch/gaussian/none/100: GSC", "relu/none/gaussian/none/100: GSC"]
    assert out["measured"][0] == pytest.approx(72.0) and out["expected"] == [72.2, 5728.0, 1.52]
    # batch norm below 10,000 points, and a heavy-tailed row below 64 datasets, are not compared
    assert out["outcome"] == ["confirmed", "not resolved at this scale", "not resolved at this scale"]
    assert "heavy-tailed" in out["note"][2] and "batch size" in out["note"][1]
    assert out["tol"][0] == pytest.approx(5 * math.hypot(0.01, 0.003) + 0.05 / 72.2)      # relative (log) s.e. of the mean
    assert D.table1_comparison({key_heavy: dict(q, gsc=1.5)}, 64, 1000, 5.0, "GSC")["outcome"] == ["confirmed"]
    assert D.gsc_comparable(key_bn, 100, 10_000) and not D.gsc_comparable(key_heavy, 16, 10_000)
    sd = D.table1_comparison({key: q}, 8, 1000, 5.0, "Sign Div.")
    se = 0.002
    assert sd["tol"][0] == pytest.approx(5 * math.hypot(se, se * math.sqrt(8) / 10) + 0.005 + D.sign_diversity_bias(0.5, 1000))
    st = D.table1_comparison({key: q}, 8, 1000, 5.0, "St. Dev.", cells={key: dict(printed="0.997", outcome="not reproduced",
                                                                                 correction="a test reading")})
    assert st["expected"] == [0.997] and st["paper_value"] == [1.0] and st["outcome"] == ["not reproduced"]
    assert st["tol"][0] == pytest.approx(5 * math.hypot(1e-4, 1e-4 * math.sqrt(8) / 10) + 0.0005)   # the corrected text's digits
    with pytest.raises(ValueError, match="column"):
        D.table1_comparison({key: q}, 8, 1000, 5.0, "gsc")


@pytest.mark.parametrize("resnet", [False, True])
def test_effective_depth_a_sample_with_zero_gradient_adds_nothing(resnet):
    """A sample whose loss gradient underflows to zero (saturated softmax in float32) has zero
    gradient norms at every layer: it must add zero, not 0/0 = NaN, to every lambda-contribution
    (seen at seed 102 of the quick chapter in a looks-linear ReLU net)."""
    rng = np.random.default_rng(2)
    ops = ([("linear", 0), ("start",), ("norm",), ("act",), ("linear", 1), ("skip",), ("norm",)] if resnet else
           [("linear", 0), ("act",), ("linear", 1), ("act",), ("linear", 2), ("act",), ("norm",)])
    n = len(ops)
    g1 = rng.uniform(0.5, 2.0, n)
    two = lambda v, w: torch.tensor([[v, w]], dtype=DT)                     # (E = 1, B = 2): sample 2 has zero gradients
    one = lambda v: torch.tensor([[v]], dtype=DT)
    rop = [torch.tensor([0.2], dtype=DT) if op[0] == "linear" else None for op in ops]
    inn = rng.uniform(0.5, 2.0, n)
    br = [None] * n
    br1 = [None] * n
    if resnet:
        br[1], br1[1] = two(0.7 * g1[1], 0.0), one(0.7 * g1[1])
    both = D.effective_depth_update(ops, [two(v, 0.0) for v in g1], br, rop, [two(v, v) for v in inn], 0.1)
    alone = D.effective_depth_update(ops, [one(v) for v in g1], br1, rop, [one(v) for v in inn], 0.1)
    for a_, b_ in zip(both, alone):
        if a_ is not None:
            assert torch.isfinite(a_).all()
            torch.testing.assert_close(a_, b_)


def test_random_block_rates_agree_with_theorem3_and_reject_a_two_percent_error():
    """Thm 3's exact rate within the family bound on random blocks; a 2% error in the rate (or the
    first-order form) is many standard errors off, so the chapter's check can fail."""
    from lib.machinery.checks import k_family
    kw = dict(skips=("identity", "gaussian"), powers=(3.0,), scales=(0.3,), d=16, n=6400, n_batch=16)
    cells = D.random_block_rates(generator=torch.Generator().manual_seed(0), **kw)
    bound = k_family(len(cells), df=15)
    assert max(abs(c.z) for c in cells) < bound
    wrong = D.random_block_rates(generator=torch.Generator().manual_seed(0), rate=lambda r, k: 1.02 * D.diluted_rate(r, k), **kw)
    assert max(abs(c.z) for c in wrong) > bound
    first = D.random_block_rates(generator=torch.Generator().manual_seed(0), rate=D.diluted_rate_first_order, **kw)
    assert max(abs(c.z) for c in first) > bound


def test_table3_networks_and_dynamical_inits():
    """§B.1.2: unit qm norm branches; skew-symmetric and negative semi-definite as named; successive
    correlated blocks have correlation about 0.5; single-layer blocks give depth + 1 linear layers."""
    g = torch.Generator().manual_seed(0)
    d = 40
    for init in D.DYNAMICAL_INITS:
        W = D.dynamical_weights(init, 6, 3, d, generator=g)
        assert W.shape == (6, 3, d, d)
        torch.testing.assert_close(W.pow(2).sum((-1, -2)), torch.full((6, 3), float(d), dtype=torch.float64))
    S = D.dynamical_weights("skew", 2, 2, d, generator=g)
    torch.testing.assert_close(S, -S.transpose(-1, -2))
    N = D.dynamical_weights("neg-def", 2, 2, d, generator=g)
    assert torch.linalg.eigvalsh(N).max() <= 1e-10
    C = D.dynamical_weights("correlated", 2, 400, d, generator=g)
    rho = (C[0] * C[1]).sum((-1, -2)) / d
    assert abs(rho.mean().item() - 0.5) < 4 * rho.std().item() / 20
    arch, ws, sk = D.table3_network("tanh", "layer", "skew", depth=5, d=8, E=2, generator=g)
    assert arch.n_linear == 6 and len(ws) == 6 and sk == [] and D.program(arch).count(("start",)) == 5
    with pytest.raises(ValueError, match="init"):
        D.dynamical_weights("orthogonal", 1, 1, 4)


def test_block_dilution_matches_theorem3_on_a_resnet():
    """Per-block rates of a layer-tanh ResNet: the block rate lies between 1 and the branch rate's
    excess, and the exact form predicts it to within a third of its excess (Thm 3, approximately)."""
    g = torch.Generator().manual_seed(1)
    arch = D.TableArch("tanh", "layer", skip="identity", depth=8, d=32)
    ws, sk = D.init_weights(arch, 4, generator=g, dtype=torch.float64)
    x, y = Ld.gaussian_noise(4, 400, 32, 32, generator=g, dtype=torch.float64)
    bd = D.block_dilution(arch, ws, sk, x, y)
    assert bd["k"].shape == (4, 4) and np.all(bd["k"] > 0)
    assert np.median(np.abs(bd["predicted"] - bd["r_block"]) / np.abs(bd["r_block"] - 1)) < 1 / 3
    with pytest.raises(ValueError, match="ResNet"):
        D.block_dilution(D.TableArch("tanh", "layer", depth=4, d=8), *D.init_weights(D.TableArch("tanh", "layer", depth=4, d=8), 1), x[:1], y[:1])


def test_prop3_sides_agree_and_the_random_init_factor_is_one():
    g = torch.Generator().manual_seed(2)
    arch = D.TableArch("tanh", "layer", depth=5, d=12)
    ws = [w[0] for w in D.init_weights(arch, 1, generator=g, dtype=torch.float64)[0]]
    x = torch.randn(12, generator=g, dtype=torch.float64)
    for layer in (0, 2, 4):
        q = D.weight_sensitivity(arch, ws, x, layer)
        assert q["direct"] == pytest.approx(q["gsc_form"], rel=1e-10)
    W = torch.randn(20000, 6, 10, generator=g, dtype=torch.float64)
    v = D.prop3_inverse_factor(W, torch.randn(20000, 10, generator=g, dtype=torch.float64))
    assert abs(v.mean().item() - 1) < 4 * v.std().item() / math.sqrt(v.numel())
    # the factor without its sqrt(d_{k+1}) would be off by sqrt(10): a check of E X^-2 = 1 would catch it
    assert abs(v.mean().item() / 10 - 1) > 0.5


def test_thm1_exact_sums():
    import itertools
    import mpmath
    brute = mpmath.fsum(mpmath.mpf(1.8) ** -sum(p) for p in itertools.combinations(range(1, 70), 2))
    assert float(brute / D.geometric_elementary_sum(2, 1.8)) == pytest.approx(1.0, rel=1e-12)
    exact, bound = D.thm1_power_sum(1, 2.0)
    assert float(exact) == pytest.approx(2.0) and float(bound) == pytest.approx(1 / math.log(2))   # the proof's false step
    T = D.thm1_update_budget(3, 1.5, 1.0, 1.0, 0.01)
    assert 0 < float(D.thm1_residual_bound(3, 1.5, 1.0, 1.0, T, terms=40)) < 0.01
    # ten times the budget breaks the bound for some (Lambda, r, h): the check can fail
    assert max(float(D.thm1_residual_bound(L, r, 1.0, 1.0, 1e4 * D.thm1_update_budget(L, r, 1.0, 1.0, 1.0), terms=40))
               for L in (1, 2, 3) for r in (1.01, 1.1)) > 1.0


def test_table1_combined_adds_up_small_deviations_and_leaves_out_heavy_rows_at_few_datasets():
    rows = [k for k in D.TABLE1 if k[1] != "batch"]
    at_paper = {k: dict(gsc=float(D.TABLE1[k][0]), se_gsc=0.01 * float(D.TABLE1[k][0]), sd_gsc=0.04 * float(D.TABLE1[k][0]))
                for k in rows}
    few, many = D.table1_combined(at_paper, 16), D.table1_combined(at_paper, 64)
    assert few["df"] == len(rows) - len(D.HEAVY_TAILED) and many["df"] == len(rows)
    assert few["stat"] == 0.0 and few["stat"] < few["critical"]
    # every row 3 % high: 3 relative s.e. each, which no single row rejects, but 18 together do
    shifted = {k: dict(q, gsc=q["gsc"] * 1.03) for k, q in at_paper.items()}
    assert D.table1_combined(shifted, 16)["stat"] > few["critical"]


def test_table1_pass_summarises_each_row_over_datasets():
    rows = [("relu", "none", "looks-linear", "none", "100"), ("tanh", "layer", "gaussian", "none", "100")]
    summ, prof = gsc_tables.table1(rows, depth=6, d=8, n_datasets=5, n_points=64, generator=g(3), dtype=DT)
    assert list(summ) == rows and list(prof) == rows
    ll, th = summ[rows[0]], summ[rows[1]]
    # looks-linear ReLU is linear and orthogonal at initialisation: GSC(L, 0) is 1 up to the finite data
    # (quadratic means over 64 points); the mean over datasets within 4 of its standard errors
    assert abs(ll["gsc"] - 1) < 4 * ll["se_gsc"] and ll["se_gsc"] > 0
    assert ll["paper"] == (1.0, 1.0, 0.5)
    # the summary's standard errors are the across-dataset s.d. over sqrt(n_datasets), and agree with the metrics
    assert math.isclose(th["se_log"], th["sd_log"] / math.sqrt(5))
    assert th["sign_all"].shape == (5,) and math.isclose(th["sign"], th["sign_all"].mean())
    gsc_profile, kinds, _, _ = prof[rows[1]]
    assert len(gsc_profile) == len(kinds) and math.isclose(gsc_profile[0], th["gsc"], rel_tol=1e-12)


def _tiny_task(n=60, d_in=8):
    X = torch.randn(n, d_in, generator=g(3), dtype=DT)
    return X, (X[:, 0] > 0).long() + 2 * (X[:, 1] > 0).long()


def test_train_tracked_without_steps_is_its_own_taylor_expansion():
    """lr = 0: the weights never move, so every first-order expansion around them is exact (each
    cut's error equals the network's) and no layer contributes a residual term (effective depth 0)."""
    from lib.experiments import effective_depth as ED

    X, y = _tiny_task()
    arch = D.TableArch("tanh", "layer", depth=5, d=8, d_in=8, d_out=4)
    r = ED.train_tracked(arch, X, y, n_nets=3, epochs=1, lr=0.0, batch=20, generator=g(4), n_classes=4)
    assert r["n_lin"] == 5 and len(r["taylor"]) == 5 and r["err"].shape == (3,)
    for cut, e in r["taylor"].items():
        np.testing.assert_array_equal(e, r["err"])
    assert (r["eff"] == 0).all()


def test_train_tracked_learns_and_keeps_its_lowest_layer_exact():
    """With steps the net trains (error below chance), its expansion with only the lowest linear
    layer below the cut is the net itself (§G keeps that layer exact), and the effective depth is
    between 1 and the number of linear layers; a ResNet's cuts sit after its skips."""
    from lib.experiments import effective_depth as ED

    X, y = _tiny_task()
    arch = D.TableArch("tanh", "layer", depth=5, d=8, d_in=8, d_out=4)
    r = ED.train_tracked(arch, X, y, n_nets=2, epochs=30, lr=0.1, batch=20, generator=g(5), n_classes=4)
    assert (r["err"] < 0.5).all()
    cuts, below = ED.linear_layers_below(r)
    assert below == [1, 2, 3, 4, 5]
    np.testing.assert_array_equal(r["taylor"][cuts[0]], r["err"])
    assert ((r["eff"] >= 1) & (r["eff"] <= r["n_lin"])).all()
    res = D.TableArch("tanh", "layer", skip="identity", depth=5, d=8, d_in=8)
    rr = ED.train_tracked(res, X, y, n_nets=2, epochs=2, lr=0.1, batch=20, generator=g(6), n_classes=4)
    assert all(rr["ops"][c - 1][0] == "skip" for c in rr["taylor"])


def test_effective_depth_is_at_most_one_less_than_the_linear_layers_and_trained_needs_half_chance():
    """By §D.1 no gradient term of the lowest of L linear layers has more than L - 1 residual
    Jacobians, whatever the training does (here a step size far too large); `trained` admits a
    result only below half the chance error."""
    from lib.experiments import effective_depth as ED

    X, y = _tiny_task()
    arch = D.TableArch("tanh", "layer", depth=5, d=8, d_in=8, d_out=4)
    r = ED.train_tracked(arch, X, y, n_nets=2, epochs=3, lr=30.0, batch=20, generator=g(7), n_classes=4)
    assert (r["eff"] <= r["n_lin"] - 1).all()
    assert ED.trained(dict(err=np.array([0.44, 0.44]))) and not ED.trained(dict(err=np.array([0.44, 0.46])))
    assert ED.trained(dict(err=np.array([0.37])), n_classes=4) and not ED.trained(dict(err=np.array([0.38])), n_classes=4)


def test_table3_comparison_declared_cells_resolve_only_when_precise_enough():
    rng = np.random.default_rng(0)
    q = lambda mean, sd: dict(log10_gsc=mean + sd * rng.standard_normal(100), log10_corrected=mean + sd * rng.standard_normal(100))
    res = {("relu", "batch", "gaussian"): q(0.289, 0.008), ("tanh", "layer", "neg-def"): q(3.369, 0.03)}
    says = "layer-tanh (iii) 3.325 5.46"
    cells = {(("tanh", "layer", "neg-def"), 0): dict(outcome="not reproduced", resolve_below=0.024, paper_says=says)}
    out = D.table3_comparison(res, 10_000, 4.2, 0, cells=cells)
    assert out["cells"] == ["relu/batch/gaussian: log10 GSC", "tanh/layer/neg-def: log10 GSC"]
    assert out["outcome"] == ["confirmed", "not reproduced"] and out["paper_says"] == ["", says]
    assert out["tol"][1] < 0.024 and abs(out["measured"][1] - out["expected"][1]) > out["tol"][1]
    coarse = D.table3_comparison(res, 1_000, 20.0, 0, cells=cells)       # batch norm at 1,000 points; a wide tolerance
    assert coarse["outcome"] == ["not resolved at this scale"] * 2 and "below 0.024" in coarse["note"][1]
