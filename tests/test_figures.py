"""lib.machinery.figures: each figure draws what its docstring says from a small synthetic result."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from lib.machinery import figures as FIG  # noqa: E402


@pytest.fixture(autouse=True)
def _close():
    yield
    plt.close("all")


def test_twin_divergence_marks_the_first_disagreement_and_the_bound():
    fl = torch.zeros(5, 2, dtype=torch.long)
    fl[2, 1] = 3
    twins = {"float64": {"divergence": torch.full((5, 2), 1e-16, dtype=torch.float64), "flips": fl, "first": [None, 3]}}
    fig = FIG.twin_divergence(twins)
    ax = fig.axes[0]
    xs = [tuple(line.get_xdata()) for line in ax.get_lines()]
    assert (3, 3) in xs                                                   # pair 1 first disagrees at step 3
    bound = ax.get_lines()[-1]
    assert np.allclose(bound.get_ydata(), 4 * np.arange(1, 6) * torch.finfo(torch.float64).eps)


def _trained(depths, n=3):
    tr = {(k, L): {"loss": torch.full((n,), float(L) * (2 if k == "plain" else 1))} for k in FIG.FAMILY_COLORS for L in depths}
    hist = {(k, L): {"step": [0, 1], "loss": [torch.ones(n), 0.5 * torch.ones(n)]} for k in FIG.FAMILY_COLORS for L in depths}
    return tr, hist


def test_training_and_degradation_plots_the_geometric_mean_per_family():
    tr, hist = _trained([5, 8])
    fig = FIG.training_and_degradation(tr, hist, [5, 8])
    right = fig.axes[1]
    means = [np.asarray(line.get_ydata(), dtype=float) for line in right.get_lines()]
    assert len(means) == 3 and np.allclose(means[0], [10, 16], rtol=1e-6)    # plain
    assert np.allclose(means[1], [5, 8], rtol=1e-6) and np.allclose(means[2], [5, 8], rtol=1e-6)
    assert len(fig.axes[0].get_lines()) == 6


def test_histograms_and_curves_draw_one_artist_per_input():
    w = np.linspace(-0.5, 1.0, 100)
    fig = FIG.weight_histograms(w, w, np.arange(10), depth=32)
    assert len(fig.axes) == 2 and fig.axes[0].get_title() == "all weights, depth 32"
    fig = FIG.cushion_histograms({"plain": torch.rand(50) + 0.1, "residual": torch.rand(50) + 0.5}, layer=3, depth=8)
    assert fig.axes[0].get_title() == "layer 4 of depth-8 networks after training"
    fig = FIG.phi_and_its_approximation(1.25)
    assert len(fig.axes[1].get_lines()) == 3
    sig = {(k, w): np.linspace(0.1, 0.9, 4) for k in ("plain", "residual") for w in ("first", "last")}
    assert len(FIG.dominant_fraction_by_layer(sig, depth=14).axes[0].get_lines()) == 4
    sens = {("plain", 5): [torch.ones(2, 3), 2 * torch.ones(2, 3)], ("residual", 5): [torch.ones(2, 3), torch.ones(2, 3)]}
    ax = FIG.noise_injection(sens, [1e-3, 1e-2], [5, 8]).axes[0]
    assert [tuple(line.get_ydata()) for line in ax.get_lines()] == [(1.0, 2.0), (1.0, 1.0)]


def test_dominant_flow_sweeps_has_a_panel_per_variable():
    sweeps = {"n": [2, 5], "p": [0.5, 1.0]}
    sweep = {(v, x): dict(res=0.5, paper=0.4, corrected=0.45, plain=0.1) for v, xs in sweeps.items() for x in xs}
    fig = FIG.dominant_flow_sweeps(sweep, sweeps)
    assert len(fig.axes) == 2 and [ax.get_xlabel() for ax in fig.axes] == ["n", "p"]
    assert fig.axes[0].get_xscale() == "log" and fig.axes[1].get_xscale() == "linear"


def test_path_sum_figures_draw_from_small_results():
    depths, betas = [1, 2], [0.1, 1.0]
    names = ["feedforward", "resnet a = b = 1", "highway g2^2 = 1/L", "feedforward + BN"] + [f"BN resnet beta = {b:g}" for b in betas]
    results = {(n, L): dict(corr=0.5 / L, se_corr=0.01, paper_corr=0.5 / L, ours=None if n == "feedforward" else 0.4 / L,
                            var=float(L), paper_var=float(L), ps_var=float(L)) for n in names for L in depths}
    fig = FIG.gradient_moments_by_depth(results, depths, betas)
    assert len(fig.axes) == 3 and fig.axes[2].get_yscale() == "log"
    g = {"a": torch.randn(2, 16), "b": torch.randn(2, 16)}
    assert len(FIG.gradients_on_a_grid(np.linspace(-2, 2, 16), g).axes) == 4
    acf = {"white": np.zeros(5), "brown": np.ones(5), ("ff", 1): np.linspace(1, 0, 5), ("ff", 2): np.linspace(1, 0.5, 5)}
    assert len(FIG.autocorrelations(acf, ["ff"], [1, 2]).axes[0].get_lines()) == 4
    Lg = np.arange(1, 50)
    fig = FIG.bn_resnet_correlation_asymptotic(Lg, {0.1: 1 / (0.1 * np.sqrt(Lg)) * 0.9}, {0.1: 1 / (0.1 * np.sqrt(Lg))})
    assert np.allclose(fig.axes[1].get_lines()[0].get_ydata(), 1 / 0.9 - 1)
    q = dict(act=np.full(3, 0.5), coact=np.full(3, 0.3))
    assert len(FIG.activation_fractions(q, q, np.full(3, 0.3), width=8, n_networks=4).axes[0].get_lines()) == 6
    fig = FIG.gradient_covariance_images({"feedforward + BN": np.eye(4), "resnet beta = 0.1": np.ones((4, 4))}, depth=10)
    assert [ax.get_title() for ax in fig.axes] == ["Fig. 5a: feedforward + BN, L = 10", "Fig. 5b: resnet beta = 0.1, L = 10"]
    r = {"ff": torch.rand(2, 16, 8) > 0.5}
    fig = FIG.activation_rasters(r, {"ff": np.random.rand(8)}, {"ff": np.array([1, 2, 3])}, depth=4, grid_size=16)
    assert len(fig.axes) == 3
    acc = {(f, L): np.array([0.5, 0.7]) for f in ("a", "b") for L in (4, 16)}
    ax = FIG.accuracy_by_depth(acc, ["a", "b"], [4, 16], ylabel="acc", title="t").axes[0]
    assert ax.get_title() == "t" and ax.get_xscale() == "log"


def test_skilling_figures_draw_from_small_results():
    acc = np.linspace(0.1, 0.9, 4)[:, None] + np.zeros((1, 3)) + np.array([0.0, 0.01, -0.01])
    runs = {"plain": {"acc": acc, "w": {0: np.array([1e-3, 2e-3]), 3: np.array([1e-2, 2e-2])}},
            "residual": {"acc": acc + 0.05, "w": {0: np.array([1e-3, 3e-3]), 3: np.array([3e-2, 2e-2])}}}
    ax = FIG.training_accuracy_curves(runs, title="t").axes[0]
    assert np.allclose(ax.get_lines()[0].get_ydata(), acc.mean(1)) and len(ax.collections) == 2   # two bands
    fig = FIG.accuracy_and_tail_probability(runs, title="t")
    assert fig.axes[1].get_yscale() == "log" and len(fig.axes[1].containers) == 2
    spectra = {("plain", "generic"): np.logspace(-20, 0, 10), ("residual", "generic"): np.logspace(-5, 0, 10)}
    assert len(FIG.null_directions(spectra, n_parameters=141).axes[0].get_lines()) == 3
    ws = np.logspace(-3, 0, 20)
    fig = FIG.moment_identifiability(np.linspace(0, 1, 5), np.ones(5), np.ones(5), ws, ws**2)
    assert len(fig.axes) == 2
    fig = FIG.reduced_phase_portraits({"plain": (0.0, 0.0), "residual": (-1.0, -1.0)}, 2.0)
    assert [ax.get_title() for ax in fig.axes[:2]] == ["plain: saddle at (0.0, 0.0)", "residual: saddle at (-1.0, -1.0)"]
    traj = {"plain": (np.arange(5), np.ones((5, 3))), "residual": (np.arange(5), 3 * np.ones((5, 3)))}
    assert len(FIG.end_to_end_maps(traj, 3.0).axes[0].get_lines()) == 3
    P = np.zeros((6, 2, 2))
    assert len(FIG.two_mode_learning({"a": (P, P), "b": (P, P)}, np.ones((2, 2))).axes[0].get_lines()) == 8
    g = np.linspace(-1, 1, 50)
    fig = FIG.spectrum_views(g, {"exact": np.ones(50), "slq": np.ones(50), "fit": np.ones(50)}, title="t")
    assert fig.axes[1].get_yscale() == "log" and fig.axes[0].get_title() == "t"



def test_fig4_and_scale_matched_figures_plot_their_groups():
    acc = np.linspace(0.1, 0.9, 5)[:, None] * np.linspace(0.5, 1.0, 8)[None]       # (epochs + 1, 8 networks)
    pop = {"acc": acc, "best": np.array([7, 6]), "worst": np.array([0, 1]),
           "norm": {0: np.arange(8.0), 4: np.arange(8.0) + 1}, "overlap": {0: np.ones(8), 4: np.ones(8)}}
    fig = FIG.best_and_worst_networks(pop, title="t")
    best_norm = fig.axes[1].get_lines()[0].get_ydata()
    assert np.allclose(best_norm, [6.5, 7.5]) and np.allclose(fig.axes[0].get_lines()[1].get_ydata(), acc[:, :2].mean(1))
    runs = {"adam": {"plain": {"acc": acc}, "residual": {"acc": acc + 0.05}}, "sgd": {"plain": {"acc": acc}}}
    fig = FIG.scale_matched_training(runs, title="t")
    assert [ax.get_title() for ax in fig.axes] == ["t: adam", "t: sgd"] and len(fig.axes[0].get_lines()) == 2


def test_two_unit_plateaus_marks_the_elimination_points():
    z = np.linspace(-2, 2, 9)
    descent = {"step": np.arange(4), "loss": np.ones((4, 2)), "h": np.ones((4, 2)), "z": np.zeros((4, 2))}
    fig = FIG.two_unit_plateaus(z, {"a": -z**2}, descent, ["r0", "r1"], plateau=2.0)
    assert np.allclose(fig.axes[1].get_lines()[0].get_ydata(), 0.5)                  # loss / plateau
    assert sorted(ln.get_xdata()[0] for ln in fig.axes[0].get_lines() if ln.get_linestyle() == "--") == [-1, 1]
    assert [t.get_text() for t in fig.axes[2].get_legend().get_texts()] == ["r0", "r1"]

# --- dilution theorem ---------------------------------------------------------------------

def test_gsc_profiles_plots_every_architecture_at_its_distance_from_the_error():
    kinds = ["linear", "nonlin"] * 3 + ["linear"]
    prof = {("a",): (np.linspace(8, 1, 7), kinds, np.ones(3), np.full(3, 0.5)),
            ("b",): (np.ones(7), kinds, np.ones(3), np.full(3, 0.4))}
    fig = FIG.gsc_profiles(prof, {("a",): "net a", ("b",): "net b"}, depth=4)
    a0 = fig.axes[0]
    assert [line.get_label() for line in a0.get_lines()] == ["net a", "net b"]
    assert a0.get_lines()[0].get_xdata()[0] == 4 and a0.get_yscale() == "log"
    assert len(fig.axes[2].get_lines()) == 2


def test_gsc_direct_and_product_pairs_solid_and_dashed_in_one_colour():
    curves = {"layer-tanh": (None, None, np.log([2.0, 4.0]), np.log([2.0, 4.5]))}
    ax = FIG.gsc_direct_and_product(curves).axes[0]
    solid, dashed = ax.get_lines()
    assert solid.get_linestyle() == "-" and dashed.get_linestyle() == "--" and solid.get_color() == dashed.get_color()
    assert np.allclose(dashed.get_ydata(), [2.0, 4.5])


def test_dilution_first_order_error_is_a_filled_contour_with_a_colourbar():
    r, k = np.linspace(1, 3, 5), np.linspace(0, 2, 4)
    err = np.abs(np.subtract.outer(k, r)) / 10
    fig = FIG.dilution_first_order_error(r, k, err)
    assert len(fig.axes) == 2 and fig.axes[0].get_xlabel() == "block growth rate r"


def test_resnet_gsc_and_dilution_corrected_draws_vanilla_dotted_on_the_right():
    blocks = {"layer-tanh, identity": {"gsc": np.array([1.1, 1.2]), "corrected": np.array([1.5, 2.2])}}
    fig = FIG.resnet_gsc_and_dilution_corrected(blocks, {"layer-tanh": np.array([8.0, 4.0, 2.0])})
    left, right = fig.axes[:2]
    assert np.allclose(left.get_lines()[0].get_xdata(), [2, 4]) and np.allclose(right.get_lines()[0].get_ydata(), [1.5, 2.2])
    vanilla = right.get_lines()[1]
    assert vanilla.get_linestyle() == ":" and np.allclose(vanilla.get_xdata(), [3, 2, 1])


def test_sign_diversity_and_taylor_figures():
    ax = FIG.sign_diversity_by_layer({"ResNet": np.array([0.5, 0.3]), "vanilla": np.array([0.5, 0.1])}).axes[0]
    assert [line.get_label() for line in ax.get_lines()] == ["ResNet", "vanilla"]
    trained = {"net": {"taylor": {2: np.array([0.3, 0.5]), 4: np.array([0.6, 0.6])},
                       "ops": [("linear", 0), ("nonlin",), ("linear", 1), ("nonlin",), ("linear", 2)]}}
    ax = FIG.taylor_expansion_error(trained, depth=3, epochs=2).axes[0]
    line, = ax.get_lines()
    assert np.allclose(line.get_xdata(), [1, 2]) and np.allclose(line.get_ydata(), [0.4, 0.6])


def test_effective_rank_and_snr_draws_each_family_in_both_panels():
    stats = {(f, L): {"rank": np.array([0.2, 0.3]) * L, "snr": np.array([1.0, 1.2]) / L} for f in ("ff", "res") for L in (2, 8)}
    fig = FIG.effective_rank_and_snr(stats, ["ff", "res"], [2, 8], dataset="digits")
    assert "digits" in fig.axes[0].get_title() and fig.axes[0].get_xscale() == "log"
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert labels == ["ff", "res"]


def test_stream_scale_and_gradients_draws_every_architecture_and_epoch():
    rng = np.random.default_rng(0)
    init = {"plain": {"q": rng.uniform(1, 2, (4, 5)) * 0.5 ** np.arange(5)}, "residual": {"q": rng.uniform(1, 2, (4, 5))}}
    predicted = {"plain": 1.5 * 0.5 ** np.arange(5)}
    layers = {"plain": {ep: {"grad": rng.uniform(1, 2, (4, 5))} for ep in (0, 1, 2)}}
    fig = FIG.stream_scale_and_gradients(init, predicted, layers)
    left, right = fig.axes
    assert len(left.get_lines()) == 3                     # two measured lines and one prediction
    assert np.allclose(left.get_lines()[1].get_ydata(), predicted["plain"])
    assert len(right.get_lines()) == 3 and left.get_yscale() == right.get_yscale() == "log"


def test_gradient_norms_by_layer_keeps_one_colour_per_architecture():
    rng = np.random.default_rng(1)
    layers = {k: {ep: {"grad": rng.uniform(1, 2, (4, 6)) * 10.0 ** ep} for ep in (0, 1, 2)} for k in ("BiasReg", "BiasReg+BN")}
    ax = FIG.gradient_norms_by_layer(layers, title="t").axes[0]
    lines = ax.get_lines()
    assert len(lines) == 6 and ax.get_yscale() == "log" and ax.get_title() == "t"
    assert np.allclose(lines[4].get_ydata(), layers["BiasReg+BN"][1]["grad"].mean(0))
    assert len({ln.get_color() for ln in lines[:3]}) == 1 and lines[0].get_color() != lines[3].get_color()
