"""lib.experiments.gsc_propositions (Philipp et al. Props. 2, 3 and 7 by Monte Carlo) and the
helpers the dilution chapter's Table 1, Fig. 3, Thm 1, Thm 2 and §4.5 cells call."""

import math

import numpy as np
import pytest
import torch

from lib.experiments import batch_noise, effective_depth, gsc_propositions as GP, gsc_tables, sphere_maps
from lib.theory import dilution as D


def gen(seed):
    return torch.Generator().manual_seed(seed)


def test_prop2_finite_differences_agree_with_the_exact_gsc_and_see_a_wrong_one(monkeypatch):
    arch = D.TableArch("tanh", "layer", depth=6, d=12)
    kw = dict(weights_generator=gen(1), points_generator=gen(1), directions_generator=gen(2), n_points=3, n_directions=2000)
    ok = GP.prop2_finite_differences(arch, **kw)
    assert set(ok["exact"]) == {len(D.program(arch)) // 2, len(D.program(arch))}
    assert all(v.shape == (3,) and (v > 0).all() for v in ok["exact"].values())
    assert ok["worst_z"] < 4.5                       # 6 pairs; a correct estimate passes 4 s.e. with p ~ 4e-4
    # a 5% error in the qm norm (the exact side) is tens of standard errors at 2000 directions
    real = GP.qm_norm
    monkeypatch.setattr(GP, "qm_norm", lambda a: 1.05 * real(a))
    kw.update(weights_generator=gen(1), points_generator=gen(1), directions_generator=gen(2))
    assert GP.prop2_finite_differences(arch, **kw)["worst_z"] > 10


def test_prop3_sensitivities_and_inverse_factors():
    arch = D.TableArch("tanh", "layer", depth=6, d=10)
    p3 = GP.prop3_weight_sensitivities(arch, weights_generator=gen(3), points_generator=gen(3), n_points=2, layers=(1, 4))
    assert len(p3) == 4
    assert all(abs(q["direct"] / q["gsc_form"] - 1) < 1e-10 for q in p3)
    inv = GP.prop3_inverse_factors(10, 4000, generator=gen(4))
    assert set(inv) == {"gaussian", "orthogonal"} and all(v.shape == (4000,) for v in inv.values())
    for v in inv.values():                            # E X^-2 = 1, within 4 standard errors
        assert abs(v.mean() - 1) < 4 * v.std(ddof=1) / math.sqrt(v.size)
    # a square orthogonal matrix gives X = 1 identically, which is why the chapter uses W/2 x W ones
    assert inv["orthogonal"].std() > 0.05


def test_prop7_composition_agrees_and_a_wrong_formula_does_not(monkeypatch):
    kw = dict(d=16, n_compositions=1200, n_batches=12)
    p7 = GP.prop7_composition([0.3, 0.6, 0.9], generator=gen(5), **kw)
    assert p7["k_blocks"].shape == (3,) and (p7["k_blocks"] > 1).all()
    assert abs(p7["measured"] - p7["predicted"]) < 5 * p7["se"]
    # composing the squared dilutions additively instead of multiplicatively is far off
    monkeypatch.setattr(D, "composed_dilution", lambda ks: (sum(k ** -2 for k in ks)) ** -0.5 * 1.3)
    bad = GP.prop7_composition([0.3, 0.6, 0.9], generator=gen(5), **kw)
    assert abs(bad["measured"] - bad["predicted"]) > 5 * bad["se"]


def test_orthogonal_gain_and_batch_size_helpers():
    std = gsc_tables.orthogonal_relu_std_with_gain(depth=8, d=16, n_datasets=3, n_points=50, generator=gen(6))
    assert 0.05 < std < 2                              # a sqrt(2) gain keeps the scale (without it: ~2^-4)
    logs = gsc_tables.log_gsc_by_batch_size(("relu", "batch", "gaussian", "none", "100"), (20, 400), depth=6, d=16,
                                            n_datasets=4, generator=gen(7))
    assert set(logs) == {20, 400} and all(v.shape == (4,) for v in logs.values())
    assert logs[20].mean() > logs[400].mean()          # smaller batches, larger GSC (the chapter's claim)


def test_resnet_block_dilution_and_the_rate_per_linear_layer():
    key = ("tanh", "layer", "gaussian", "identity", "100")
    out = gsc_tables.resnet_block_dilution([key], depth=8, d=16, n_datasets=3, n_points=40, generator=gen(8))
    (lab, s), = out.items()
    assert lab == D.TableArch(*key, depth=8, d=16).label
    n_blocks = len(s["k"])
    assert all(s[f].shape == (n_blocks,) for f in ("k", "r_branch", "r_block", "predicted", "gsc", "corrected"))
    assert np.allclose(s["gsc"], np.cumprod(s["r_block"][::-1]))
    assert np.allclose(s["corrected"], np.cumprod(D.undiluted_rate(s["r_block"], s["k"])[::-1]))
    assert gsc_tables.rate_per_linear_layer(1.1 ** (2 * np.arange(1, 6))) == pytest.approx(1.1, rel=1e-12)


def test_random_layer_volumes_are_one():
    rows = sphere_maps.random_layer_volumes(("tanh",), 1, generator=gen(9))
    (name, det, change, q2), = rows
    assert name == "tanh" and abs(det - 1) < 10 * change + 1e-6 and q2 >= 1


def test_sqrt_b_scaling_recovers_a_planted_law():
    bs = [256, 512, 1024, 4096]
    gsc = np.array([2.0, 4.0])
    # relative change exactly c * GSC * sqrt(b - 32) / b, three repetitions, two networks
    noise = {b: np.tile(0.7 * gsc * math.sqrt(b - 32) / b, (3, 1)) for b in bs}
    out = batch_noise.sqrt_b_scaling(noise, gsc)
    assert np.allclose(out["slopes"], 1.0)
    assert np.allclose(out["ratio"], [0.7 * gsc.mean() * math.sqrt(b - 32) / b / (gsc.mean() / math.sqrt(b)) for b in bs])
    noise2 = {b: v * (b / 256) ** 0.2 for b, v in noise.items()}      # a different law has a different slope
    assert (batch_noise.sqrt_b_scaling(noise2, gsc)["slopes"] < 0.9).all()


def test_thm1_study_small_grid():
    t = D.thm1_study(depths=(1, 3), rates=(1.5, 2.0), hs=(1e-3, 1.0), steps=((1, 3), (1.1, 2.0)), dps=30)
    assert len(t["grid"]) == len(t["s_over_h"]) == 8 and max(t["s_over_h"]) <= 1
    assert t["identity_error"] < 1e-12
    assert (1, 2.0) in t["false_steps"] and (1, 1.1) in t["false_steps"]     # Li_{-1}(1/2) = 2 > 1/ln 2
    assert all(len(row) == 4 for row in t["step"])


def test_train_architectures_and_taylor_increase():
    X = torch.randn(60, 8, generator=gen(10))
    y = torch.arange(60) % 10
    archs = {"plain": (("tanh", "layer"), dict(d_out=10), 20), "full batch": (("relu", "none"), dict(d_out=10), None)}
    out = effective_depth.train_architectures(X, y, depth=4, width=8, n_nets=2, epochs=1, lr=0.05, generator=gen(11),
                                              architectures=archs)
    assert set(out) == set(archs)
    for r in out.values():
        inc = effective_depth.taylor_increase(r)
        assert inc.shape == (2,)
        assert np.allclose(inc, r["taylor"][max(r["taylor"])] - r["err"])
    assert set(effective_depth.DIGIT_ARCHITECTURES) == {"vanilla batch-ReLU", "vanilla layer-tanh", "looks-linear ReLU",
                                                        "ResNet layer-tanh"}


def test_designed_skip_as_printed_equals_the_library_form():
    from lib.theory import ensembles

    for tau in (0.0, 0.1):
        d = ensembles.designed_skip_as_printed(16, tau, generator=gen(12))
        assert d["same"] < d["cond"] * 1e-12 and d["unit_circle"] < d["cond"] * 1e-12
        assert d["gram"] < d["t_norm"] ** 2 * d["unitarity"] + 1e-12
    assert ensembles.designed_skip_as_printed(16, 0.0, generator=gen(13))["column_cosine"] < 1e-12   # tau = 0: orthogonal
    assert ensembles.designed_skip_as_printed(16, 0.2, generator=gen(13))["column_cosine"] > 1e-3
