"""lib.experiments.singularities: Orhan & Pitkow's Supp. Note 1 counts on exact Hessians."""

import numpy as np
import pytest
import torch

from lib import Arch, Net
from lib.experiments import singularities as SG


def test_null_directions_match_the_rescalings_and_singularities():
    x = torch.randn(200, 5, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    nullity, spectra = SG.zero_loss_nullities(x, generator_for=lambda: torch.Generator().manual_seed(2))
    assert nullity == {("plain", "generic"): 18, ("plain", "overlap"): 24, ("plain", "dead"): 30,
                       ("residual", "generic"): 6, ("residual", "overlap"): 6, ("residual", "dead"): 13}
    for k, s in spectra.items():                           # a gap of orders of magnitude at the threshold
        assert s[nullity[k]] / s[-1] > 1e-6 and (nullity[k] == 0 or s[nullity[k] - 1] / s[-1] < 1e-12)


def test_half_active_construction():
    x = torch.randn(100, 5, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    net = SG.half_active_net("plain", "overlap", x, generator=torch.Generator().manual_seed(4))
    pre = net(x, trace=True)[1].pre
    for i in (0, 2):
        assert torch.all(((pre[i] > 0).double().mean(1) - 0.5).abs() <= 0.01)   # every unit on for half the inputs
    assert torch.equal(net.weights[1][0, 0], net.weights[1][0, 1])
    with pytest.raises(ValueError, match="config"):
        SG.half_active_net("plain", "twin", x)


def test_overlap_columns_agree_outside_the_incoming_rows_only():
    from lib.theory import curvature as C

    x = torch.randn(100, 5, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    net = SG.half_active_net("plain", "overlap", x, generator=torch.Generator().manual_seed(4))
    f = C.FlatLoss(net, SG.half_mse, x, torch.randn(100, 3, generator=torch.Generator().manual_seed(5), dtype=torch.float64))
    ov = SG.overlap_hessian_columns(f)
    assert len(ov["incoming"]) == 14 and len(ov["rest"]) == f.N - 14
    assert ov["diff"][ov["rest"]].max() < 1e-12 * ov["hessian"].abs().max()
    assert ov["diff"][ov["incoming"]].max() > 1e-4
    assert SG.flat_index(f, f.names[1], *[0] * len(f.shapes[1])) == f.shapes[0].numel()


def test_distance_to_singularities_by_hand():
    # Two members, width 3, one block: rows set by hand so that norms and correlations are known.
    net = Net(Arch(d_in=4, width=3, depth=1, d_out=2, init="glorot", bias=True), E=2,
              generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    a = torch.tensor([1.0, 2.0, 3.0, 4.0])
    with torch.no_grad():
        net.weights[0][0] = torch.stack([a, a, -a])              # units 0 and 1 overlap, unit 2 anti-correlated
        net.weights[0][1] = torch.stack([a, 2 * a + 1, a.flip(0)])
        net.weights[1][0] = torch.eye(3)                         # centred rows correlate -1/2 pairwise
        net.weights[1][1] = 0.0
        net.weights[1][1][:, 0] = 1.0                            # three identical rows
    d = SG.distance_to_singularities(net)
    n_a = a.norm().item()
    # Member 0: stem norms |a| each, block rows of norm 1; overlaps: stem pairs (0,1) -> 1, others -1 -> 0:
    # 2 of 6 ordered pairs positive, mean 1/3; eye(3) rows centred are (2,-1,-1)/3 etc., correlation -1/2: 0.
    assert np.isclose(d["norm"][0], (3 * n_a + 3) / 6)
    assert np.isclose(d["overlap"][0], (1 / 3 + 0) / 2)
    # Member 1: 2a + 1 is a shifted, scaled a (correlation 1), a.flip is perfectly anti-correlated with both;
    # the block's three identical rows all correlate 1.
    assert np.isclose(d["norm"][1], (n_a + (2 * a + 1).norm().item() + n_a + 3) / 6)
    assert np.isclose(d["overlap"][1], (1 / 3 + 1) / 2)


def test_best_and_worst_ranks_by_mean_accuracy():
    x = torch.randn(64, 5, generator=torch.Generator().manual_seed(1))
    y = (x[:, 0] > 0).long()
    arch = Arch(d_in=5, width=6, depth=2, d_out=2, init="glorot", bias=True)
    out = SG.best_and_worst(arch, x, y, E=6, epochs=3, checkpoints=(0, 3), group=2,
                            generator=torch.Generator().manual_seed(2), batch_size=16, desc="test")
    m = out["mean_acc"]
    assert np.allclose(m, out["acc"][1:].mean(0))
    assert m[out["best"]].min() >= np.delete(m, out["best"]).max()
    assert m[out["worst"]].max() <= np.delete(m, out["worst"]).min()
    assert set(out["norm"]) == {0, 3} and out["overlap"][3].shape == (6,)
    with pytest.raises(ValueError, match="group"):
        SG.best_and_worst(arch, x, y, E=6, epochs=1, checkpoints=(), group=4, generator=torch.Generator())


def test_bias_regularisation_is_paired_and_draws_its_targets():
    x = torch.randn(64, 5, generator=torch.Generator().manual_seed(1))
    y = (x[:, 0] > 0).long()
    arch = Arch(d_in=5, width=6, depth=2, d_out=2, init="glorot", bias=True)
    out = SG.bias_regularisation(arch, x, y, E=3, epochs=2, variants={"plain": (0, 0, 0), "reg": (0.5, 0.1, 0.1)},
                                 generator_for=lambda s: torch.Generator().manual_seed(s), stream=2, batch_size=16)
    assert out["reg"]["acc"].shape == (3, 3) and len(out["reg"]["targets"]) == 3     # stem and two blocks, not the readout
    t = torch.cat([v.flatten() for v in out["reg"]["targets"]])
    assert abs(t.mean().item() - 0.5) < 4 * 0.1 / len(t) ** 0.5 and 0.05 < t.std().item() < 0.2
    assert np.array_equal(out["plain"]["acc"][0], out["reg"]["acc"][0])              # the same networks at the start
    from lib.nets import training as T                                                 # lam = 0 is the plain run
    ref_net = Net(arch, E=3, generator=(g := torch.Generator().manual_seed(2)))
    ref = T.train(ref_net, x, y, epochs=2, batch_size=16, lr=5e-4, optimizer="adam", generator=g, independent_order=True,
                  progress=False)
    assert np.array_equal(out["plain"]["acc"], torch.stack(ref["accuracy"]).numpy())
    # a variant with its own architecture of the same shapes starts from the same networks, and checkpoints
    # record Fig. 6a's per-layer statistics (stem and two blocks); other shapes are refused
    more = SG.bias_regularisation(arch, x, y, E=3, epochs=2, variants={"plain": (0, 0, 0), "bn": (0, 0, 0, arch.with_(norm_at=1)),
                                  "res": (0, 0, 0, arch.with_(kind="residual"))}, checkpoints=(0, 2),
                                  generator_for=lambda s: torch.Generator().manual_seed(s), stream=2, batch_size=16)
    assert np.array_equal(more["plain"]["acc"], out["plain"]["acc"]) and set(more["bn"]["layers"]) == {0, 2}
    assert more["res"]["layers"][0]["grad"].shape == (3, 3) and more["bn"]["layers"][2]["q"].shape == (3, 3)
    q_bn, q_plain = more["bn"]["layers"][0]["q"], more["plain"]["layers"][0]["q"]    # at epoch 0, the same weights:
    assert np.array_equal(q_bn[:, 0], q_plain[:, 0]) and not np.allclose(q_bn[:, 1:], q_plain[:, 1:])  # stem alike, block 1 on normalised
    with pytest.raises(ValueError, match="weight shapes"):
        SG.bias_regularisation(arch, x, y, E=1, epochs=1, variants={"wide": (0, 0, 0, arch.with_(width=8))},
                               generator_for=lambda s: torch.Generator().manual_seed(s), stream=2)
    with pytest.raises(ValueError, match="no biases"):
        SG.train_bias_regularised(arch.with_(bias=False), x, y, E=1, epochs=1, mu=0, sigma=0, lam=1,
                                  generator=torch.Generator(), target_generator=torch.Generator())


def test_penalty_changes_the_biases_toward_the_target():
    x = torch.randn(64, 5, generator=torch.Generator().manual_seed(1))
    y = (x[:, 0] > 0).long()
    arch = Arch(d_in=5, width=6, depth=1, d_out=2, init="glorot", bias=True)
    from lib.nets import training as T
    net = Net(arch, E=2, generator=torch.Generator().manual_seed(0))
    T.train(net, x, y, epochs=30, batch_size=64, lr=0.05, optimizer="adam", generator=torch.Generator().manual_seed(0),
            progress=False, penalty=lambda n: 100.0 * sum((b - 1.0).pow(2).sum((-2, -1)) for b in n.biases[:-1]))
    # from 0 to within a few Adam steps (lr 0.05) of the target 1; the readout bias is not penalised
    assert all(torch.allclose(b, torch.ones_like(b), atol=0.15) for b in net.biases[:-1])
