"""lib.experiments.equivalence: Yu & Tomasi's experiments, on tiny networks and data."""

import numpy as np
import pytest
import torch

from lib.experiments import equivalence as EQ
from lib.nets import convnets as C

DT = torch.float64


def g(s=0):
    return torch.Generator().manual_seed(s)


def streams(k):
    return g(k)


@pytest.fixture(scope="module")
def data():
    x = torch.rand(48, 1, 8, 8, generator=g(1), dtype=torch.float32)
    y = torch.randint(0, 10, (48,), generator=g(2))
    return x, y


@pytest.fixture(scope="module")
def families(data):
    x, y = data
    return EQ.train_families([5], x, y, n_seeds=2, steps=4, batch_size=16, lr=0.05, weight_decay=1e-4, streams=streams)


def test_transfer_equivalence_is_exact_and_the_wrong_net_is_not():
    a = C.ConvArch(1, "residual", in_channels=1, widths=(2, 4, 8))
    eq = EQ.transfer_equivalence(a, n_inputs=3, size=8, generator=g(), dtype=DT)
    assert set(eq.params) == set(C.init_params(a, 1, "hmwi", dtype=DT))
    assert next(iter(eq.params.values())).shape[0] == 4          # two HMWI and two KWI draws
    assert eq.gap < 1e-13 * max(1.0, eq.scale) and eq.wrong_gap > 1e-3 and eq.scale > 0


def test_gradient_gap_is_round_off_and_sees_a_wrong_map(monkeypatch):
    a = C.ConvArch(1, "residual", in_channels=1, widths=(2, 4, 8))
    r = C.init_params(a, 2, "hmwi", generator=g(), dtype=DT)
    x, y = torch.rand(6, 1, 8, 8, generator=g(3), dtype=DT), torch.randint(0, 10, (6,), generator=g(4))
    gap, scale = EQ.gradient_gap(a, r, x, y)
    assert gap < 1e-12 * scale and scale > 0
    transfer = C.transfer
    monkeypatch.setattr(C, "transfer", lambda arch, p, sign=1.0: {k: v * 1.01 for k, v in transfer(arch, p, sign).items()})
    assert EQ.gradient_gap(a, r, x, y)[0] > 1e-6 * scale


def test_twin_runs_record_the_first_disagreement(data):
    x, y = data
    a = C.ConvArch(1, "residual", in_channels=1)
    tw = EQ.twin_runs(a, x, y, steps=3, batch_size=8, lr=0.05, weight_decay=1e-4, streams=streams,
                      precisions=(("float64", DT, 2), ("float32", torch.float32, 1)))
    assert list(tw) == ["float64", "float32"] and tw["float64"]["divergence"].shape == (3, 2)
    for t in tw.values():
        fl = t["flips"]
        assert len(t["first"]) == fl.shape[1]
        for e, f in enumerate(t["first"]):
            assert (f is None) == (not fl[:, e].any()) and (f is None or fl[f - 1, e] > 0 and not fl[: f - 1, e].any())


def test_decay_ratios_and_identity_mass(families, data):
    x, y = data
    trained, _ = families
    ratios = EQ.decay_ratios(trained, x, y, weight_decay=1e-4)
    assert set(ratios) == {(k, 5, w) for k in ("plain", "residual") for w in ("init", "final")}
    t = trained[("plain", 5)]
    loss, decay, _ = C.loss_and_decay(t["arch"], t["p"], x, y, weight_decay=1e-4)
    np.testing.assert_allclose(ratios[("plain", 5, "final")], (loss / decay).numpy())
    idm = EQ.identity_mass(trained[("residual", 5)], trained[("plain", 5)])
    assert idm.mean_change > 0 and idm.max_change >= idm.mean_change and idm.share.shape == (2,)
    assert np.all((idm.share > 0) & (idm.share <= 1)) and np.all(idm.plain_share < idm.share)
    untrained = dict(trained[("residual", 5)], p=trained[("residual", 5)]["p0"])
    assert EQ.identity_mass(untrained, trained[("plain", 5)]).max_change == 0.0


def test_dominant_fractions_and_noise_sensitivities(families, data):
    x, y = data
    trained, _ = families
    sig = EQ.dominant_fractions(trained, 5, x, y, x[:8], y[:8], batch_size=16, lr=0.05, weight_decay=1e-4, streams=streams)
    assert set(sig) == {(k, w) for k in ("plain", "residual") for w in ("first", "last")}
    assert all(v.ndim == 1 and np.all((v >= 0) & (v <= 1)) for v in sig.values())
    sens = EQ.noise_sensitivities(trained, [5], x[:8], [1e-3, 1e-1], n_draws=2, generator=g(5))
    assert set(sens) == {("plain", 5), ("residual", 5)} and all(len(v) == 2 for v in sens.values())
    assert all(v[1].mean() > v[0].mean() > 0 for v in sens.values())          # more noise, larger change


def test_bn_block_cushions_by_their_closed_behaviour():
    out = EQ.bn_block_cushions(channels=4, size=4, generator=g(7))
    assert float(out["cushion"][("float64", False, 0.0)].max()) < 1e-12
    assert np.allclose(out["per_eps"] / out["per_eps"][0], 1.0, rtol=1e-3)   # linear in eps
    assert out["doubled"] == pytest.approx(0.25, rel=1e-3)                   # eps / Var: the input doubled, Var x4
    assert float(out["cushion"][("float64", True, 1e-5)].mean()) > 1e3 * float(out["cushion"][("float64", False, 1e-5)].mean())


def test_log_loss_growth_and_log_change_per_network():
    tr = {(k, L): {"loss": torch.tensor([1.0, 4.0]) * (L if k == "plain" else 1)} for k in ("plain", "residual") for L in (5, 8)}
    assert EQ.log_loss_growth(tr, 5, 8) == pytest.approx({"plain": np.log(8 / 5), "residual": 0.0})
    sens = {(k, 5): [torch.full((2, 3), 2.0), torch.full((2, 3), 8.0)] for k in ("plain", "residual")}
    out = EQ.log_change_per_network(sens, 5)
    assert set(out) == {"plain", "residual"} and np.allclose(out["plain"], np.log(4.0))   # mean of log 2 and log 8


def test_table3_statistics_and_twin_end_of_training(data):
    a = C.ConvArch(1, "plain", in_channels=1, widths=(2, 4, 8))
    t3 = EQ.table3_statistics(a, 3, generator=g(8))
    assert list(t3) == ["p0", "t0"] and set(t3["p0"].stats) >= set(EQ.TABLE3_KEYS)
    assert all(v.shape == (3,) for v in t3["t0"].stats.values()) and set(t3["t0"].expected) >= set(EQ.TABLE3_KEYS)
    assert t3["t0"].stats["mass_id"].mean() > t3["p0"].stats["mass_id"].mean()      # t0 carries the 1s of the ID entries
    x, y = data
    ar = C.ConvArch(1, "residual", in_channels=1, widths=(2, 4, 8))
    tw = EQ.twin_runs(ar, x, y, steps=2, batch_size=8, lr=0.05, weight_decay=1e-4, streams=streams,
                      precisions=(("float64", DT, 2),))
    tables, rel, rows = EQ.twin_end_of_training(ar, tw, x, y, weight_decay=1e-4)
    assert rel["float64"]["L"].max() < 1e-12 and len(rows) == 2 and rows[0]["precision, pair"] == "float64, 0"


def test_sigma_approximations_are_the_four_forms():
    from lib.theory import dominant_flow as Df

    out = Df.sigma_approximations(n=20, L=10, l=5, p=0.9, eps=0.1, sigma_a=0.01, sigma_v=5.0)
    assert out["eq11"] == Df.sigma_approx(form="eq11") and out["conclusion"] == Df.sigma_approx()
    assert out["corrected, exact phi"] == Df.sigma_approx(form="corrected", exact_phi=True) and len(out) == 4
