"""Parameter validation, profiles, seeding and device resolution: every bad input is one clear error."""

import time

import numpy as np
import pytest
import torch

import lib
from lib.machinery import chapters
from lib.nets import data
from lib.machinery import runtime

KNOBS = dict(depth=None, width=None, n_nets=None, n_probes=None)


@pytest.fixture(autouse=True)
def tmp_build(tmp_path, monkeypatch):
    monkeypatch.setenv("BOOK_BUILD_DIR", str(tmp_path / "_build"))


def test_profiles_resolve():
    quick = lib.setup("preliminaries", profile="quick", device="cpu", **KNOBS)
    paper = lib.setup("preliminaries", profile="paper", device="cpu", **KNOBS)
    spec = chapters.get("preliminaries")
    for k in spec.knobs:
        assert getattr(quick, k.name) == k.quick and getattr(paper, k.name) == k.paper
    assert lib.setup("preliminaries", device="cpu", **(KNOBS | {"depth": 7})).depth == 7


def test_header_line(capsys):
    run = lib.setup("preliminaries", profile="quick", device="cpu", seed=4, **KNOBS)
    line = capsys.readouterr().out.strip()
    assert line == run.header()
    for part in ("[preliminaries]", "profile=quick", "device=cpu", "dtype=float64", "seed=4", f"torch={torch.__version__}"):
        assert part in line


@pytest.mark.parametrize("kw,match", [
    (dict(profile="fast"), "profile"),
    (dict(seed=-1), "seed"),
    (dict(depth=-3), "depth"),
    (dict(depth=2.5), "depth"),
    (dict(width="wide"), "width"),
    (dict(n_nets=5), "n_nets"),
    (dict(device="tpu"), "device"),
])
def test_bad_parameters_are_clear_errors(kw, match):
    with pytest.raises(ValueError, match=match):
        lib.setup("preliminaries", **({"device": "cpu"} | KNOBS | kw))


def test_rules_across_knobs_are_clear_errors_before_a_kernel_starts():
    """dilution-theorem's constraints: an odd width, and bn_datasets with n_points = 10,000."""
    from lib.machinery.spec import resolve

    spec = chapters.get("dilution-theorem")
    given = {k: None for k in spec.knob_names}
    assert resolve(spec, "quick", 0, given)["width"] == 100
    with pytest.raises(ValueError, match="'width' = 101: must be even"):
        resolve(spec, "quick", 0, given | {"width": 101})
    with pytest.raises(ValueError, match="'bn_datasets' applies only when n_points is not 10,000"):
        resolve(spec, "quick", 0, given | {"bn_datasets": 8, "n_points": 10_000})
    assert resolve(spec, "quick", 0, given | {"bn_datasets": 8})["bn_datasets"] == 8       # with the quick 1,000 points
    assert resolve(spec, "paper", 0, given)["n_points"] == 10_000                           # unset: no complaint


def test_unknown_and_missing_parameters():
    with pytest.raises(ValueError, match="unknown parameter.*'depht'"):
        lib.setup("preliminaries", device="cpu", depht=3, **KNOBS)
    with pytest.raises(ValueError, match="not given parameter"):
        lib.setup("preliminaries", device="cpu", depth=None)
    with pytest.raises(ValueError, match="unknown chapter"):
        lib.setup("prelims", device="cpu")


def test_cuda_without_gpu_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ValueError, match="no CUDA GPU.*device='auto' or device='cpu'"):
        runtime.resolve_device("cuda")
    with pytest.raises(ValueError, match="no CUDA GPU"):
        lib.setup("preliminaries", device="cuda", **KNOBS)
    assert runtime.resolve_device("auto") == torch.device("cpu")


def test_auto_picks_cuda_when_present(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert runtime.resolve_device("auto") == torch.device("cuda")
    with pytest.raises(ValueError, match="only 1 GPU"):
        runtime.resolve_device("cuda:3")


def test_seeding_is_reproducible():
    def draw():
        run = lib.setup("preliminaries", device="cpu", seed=11, **KNOBS)
        return torch.randn(3).numpy(), np.random.rand(2), torch.randn(2, generator=run.generator(5)).numpy()

    a, b = draw(), draw()
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    run = lib.setup("preliminaries", device="cpu", seed=11, **KNOBS)
    assert not np.array_equal(torch.randn(2, generator=run.generator(6)).numpy(), a[2])


def test_missing_cifar_is_a_fast_clear_error(tmp_path):
    t0 = time.perf_counter()
    with pytest.raises(FileNotFoundError, match=r"cifar-10-batches-py.*never downloads"):
        data.cifar("cifar10", root=tmp_path)
    with pytest.raises(FileNotFoundError, match="cifar-100-python"):
        data.load("cifar100-coarse", root=tmp_path)
    assert time.perf_counter() - t0 < 1.0
    with pytest.raises(ValueError, match="unknown dataset"):
        data.load("imagenet")


def test_embedded_datasets():
    x, y = data.digits(dtype=torch.float64)
    assert x.shape == (1797, 64) and y.shape == (1797,) and 0 <= x.min() and x.max() <= 1 and set(y.tolist()) == set(range(10))
    xs, ys = data.gaussian_noise(3, 500, 100, 100, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    assert xs.shape == (3, 500, 100) and ys.shape == (3, 500, 100)
    torch.testing.assert_close(xs.norm(dim=-1), torch.full((3, 500), 10.0, dtype=torch.float64))
    assert abs(ys.var().item() - 0.01) < 5 * 0.01 * (2 / ys.numel()) ** 0.5
    grid = data.grid_1d(256)
    assert grid.shape == (256, 1) and grid[0, 0] == -2 and grid[-1, 0] == 2
    xm, lm = data.gaussian_mixture(400, 4, 10, generator=torch.Generator().manual_seed(0))
    assert xm.shape == (400, 10) and set(lm.tolist()) == {0, 1, 2, 3}


def test_training_loop_learns_and_is_seeded():
    x, y = data.digits()
    arch = lib.Arch(d_in=64, width=32, depth=1, d_out=10)

    def once():
        net = lib.Net(arch, E=2, generator=torch.Generator().manual_seed(0))
        hist = lib.nets.training.train(net, x, y, epochs=3, batch_size=32, lr=0.01, optimizer="adam",
                                  generator=torch.Generator().manual_seed(1), progress=False)
        return hist

    h1, h2 = once(), once()
    assert h1["epoch"] == [0, 1, 2, 3]
    assert (h1["accuracy"][-1] > 0.9).all() and (h1["accuracy"][0] < 0.3).all()
    torch.testing.assert_close(h1["loss"][-1], h2["loss"][-1], rtol=0, atol=0)


def test_independent_order_gives_each_member_its_own_run():
    """Two members with identical weights stay identical under a shared mini-batch order and
    diverge when each draws its own order; a callback returning {} records nothing."""
    x, y = data.digits()
    arch = lib.Arch(d_in=64, width=16, depth=1, d_out=10)

    def run(independent):
        net = lib.Net(arch, E=1, generator=torch.Generator().manual_seed(0))
        twin = lib.Net(arch, E=2, generator=torch.Generator().manual_seed(0))
        with torch.no_grad():
            for w2, w1 in zip(twin.weights, net.weights):
                w2.copy_(w1.expand_as(w2))
        hist = lib.nets.training.train(twin, x, y, epochs=1, batch_size=64, lr=0.01, optimizer="adam",
                                  generator=torch.Generator().manual_seed(1), independent_order=independent,
                                  callback=lambda ep, m: {"cp": ep} if ep == 1 else {}, progress=False)
        assert hist["cp"] == [1]
        return hist["loss"][-1]

    shared, own = run(False), run(True)
    assert shared[0] == shared[1]
    assert own[0] != own[1]


def _raw_tiny_cifar(root):
    """`lib.nets.data.write_tiny_cifar`'s files under ``root``, read back with pickle alone: the oracle."""
    import pickle

    def read(path):
        with open(path, "rb") as fh:
            return pickle.load(fh)

    batches = {p.name: read(p) for p in sorted((root / "cifar-10-batches-py").iterdir())}
    sets = {name: read(root / "cifar-100-python" / name) for name in ("train", "test")}
    return batches, sets


def test_cifar_loaders_read_the_python_release_layout(tmp_path, monkeypatch):
    data.write_tiny_cifar(tmp_path, n_train=35, n_test=5)
    batches, sets = _raw_tiny_cifar(tmp_path)
    assert sorted(batches) == [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    assert [len(batches[f"data_batch_{i}"]["labels"]) for i in range(1, 6)] == [7] * 5
    x, y = data.cifar("cifar10", root=tmp_path, dtype=torch.float64)
    assert x.shape == (35, 3072) and y.shape == (35,)
    raw = np.concatenate([batches[f"data_batch_{i}"]["data"] for i in range(1, 6)])
    np.testing.assert_allclose(x.numpy(), raw / 255.0)
    assert y.tolist() == sum((batches[f"data_batch_{i}"]["labels"] for i in range(1, 6)), [])
    # channel-major: the first 1024 values of a row are the red plane, as torchvision's (3, 32, 32) tensor flattened
    img = raw[3].reshape(3, 32, 32)
    np.testing.assert_allclose(x[3].view(3, 32, 32).numpy(), img / 255.0)
    xt, yt = data.cifar("cifar10", train=False, root=tmp_path)
    assert xt.shape == (5, 3072) and yt.tolist() == batches["test_batch"]["labels"]
    monkeypatch.setenv("BOOK_DATA", str(tmp_path))                      # the chapters' route: lib.nets.data.load via BOOK_DATA
    xf, yf = data.load("cifar100")
    assert xf.shape == (35, 3072) and yf.tolist() == sets["train"]["fine_labels"]
    np.testing.assert_allclose(xf.numpy(), sets["train"]["data"] / 255.0, rtol=1e-6)
    _, yc = data.load("cifar100-coarse")
    assert yc.tolist() == sets["train"]["coarse_labels"] and int(yc.max()) < 20
    (tmp_path / "cifar-10-batches-py" / "data_batch_3").unlink()
    with pytest.raises(FileNotFoundError, match="data_batch_3 is missing"):
        data.cifar("cifar10", root=tmp_path)


def test_comma_separated_knobs_parse_or_fail_clearly():
    run = runtime.Run(chapter="x", profile="quick", device=torch.device("cpu"), dtype=torch.float64, seed=0,
                      knobs={"depths": "8,5,8,11", "betas": "0.5,abc", "one": "5"})
    rule = "depths 3N + 2, e.g. '5,8'"
    assert run.values("depths", int, lambda d: (d - 2) % 3 == 0, rule) == [5, 8, 11]       # sorted, distinct
    with pytest.raises(ValueError, match=r"parameter 'depths' = '8,5,8,11'.*not allowed: 5, 11"):
        run.values("depths", int, lambda d: d == 8, rule)
    with pytest.raises(ValueError, match=r"parameter 'betas' = '0.5,abc': expected comma-separated"):
        run.values("betas", float, lambda b: b > 0, "positive numbers")
    with pytest.raises(ValueError, match="at least 2 distinct values"):
        run.values("one", int, lambda d: True, rule, min_count=2)
