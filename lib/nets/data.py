"""Datasets, all offline.

Embedded generators (no files at all):

* :func:`gaussian_noise` -- Philipp et al. §I.2: inputs and labels with i.i.d. N(0, 1/d) entries,
  inputs rescaled to length 10; several independent datasets at once.
* :func:`grid_1d` -- Balduzzi et al. §1.1: a fine 1-D grid of inputs on an interval.
* :func:`gaussian_mixture` -- Littwin & Wolf App. C style K-class Gaussian mixture.

A real image set that ships inside a PyPI package: :func:`digits` (scikit-learn's 1,797 8×8
handwritten digits, read from the installed package, never downloaded) -- the offline stand-in
for CIFAR. CIFAR-10/100 load from the official python release under a local data root (:func:`cifar`) and fail
within a second with a message saying how to provide them when the files are absent: this module
never downloads anything.
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from ..theory.ensembles import draw_device

DATASETS = ("gaussian", "digits", "cifar10", "cifar100", "cifar100-coarse")


def gaussian_noise(n_sets: int, n: int, d_in: int = 100, d_out: int = 100, *, length: float = 10.0,
                   generator: torch.Generator | None = None, device=None,
                   dtype: torch.dtype = torch.float32) -> tuple[Tensor, Tensor]:
    """Philipp et al. §I.2: ``n_sets`` datasets of ``n`` points; entries N(0, 1/d), inputs
    normalised to length ``length``. Returns ``x (n_sets, n, d_in)``, ``y (n_sets, n, d_out)``."""
    x = torch.randn(n_sets, n, d_in, generator=generator, device=device, dtype=torch.float64) / d_in**0.5
    x = x * (length / x.norm(dim=-1, keepdim=True))
    y = torch.randn(n_sets, n, d_out, generator=generator, device=device, dtype=torch.float64) / d_out**0.5
    return x.to(dtype), y.to(dtype)


def grid_1d(n: int, lo: float = -2.0, hi: float = 2.0, *, device=None, dtype=torch.float32) -> Tensor:
    """``n`` equally spaced scalar inputs on ``[lo, hi]`` as ``(n, 1)`` (Balduzzi et al. §1.1)."""
    return torch.linspace(lo, hi, n, device=device, dtype=dtype).unsqueeze(-1)


def gaussian_mixture(n: int, k: int, d: int, *, separation: float = 3.0, generator=None,
                     device=None, dtype=torch.float32) -> tuple[Tensor, Tensor]:
    """``n`` points of a ``k``-class mixture of unit-variance Gaussians in R^d whose means are
    drawn N(0, separation²/d · I). Returns ``x (n, d)`` and integer labels ``(n,)``."""
    gdev = draw_device(generator)
    means = torch.randn(k, d, generator=generator, device=gdev, dtype=torch.float64) * (separation / d**0.5)
    labels = torch.randint(0, k, (n,), generator=generator, device=gdev)
    x = means[labels] + torch.randn(n, d, generator=generator, device=gdev, dtype=torch.float64)
    return x.to(device=device, dtype=dtype), labels.to(device)


def digits(*, device=None, dtype=torch.float32) -> tuple[Tensor, Tensor]:
    """scikit-learn's handwritten digits (shipped inside the package): ``x (1797, 64)`` scaled to
    [0, 1] and labels ``(1797,)`` in 0..9."""
    from sklearn.datasets import load_digits

    ds = load_digits()
    x = torch.tensor(ds.data / 16.0, dtype=dtype, device=device)
    return x, torch.tensor(ds.target, device=device)


_CIFAR_DIRS = {"cifar10": "cifar-10-batches-py", "cifar100": "cifar-100-python", "cifar100-coarse": "cifar-100-python"}


def data_root(root: str | os.PathLike | None = None) -> Path:
    """The local data root: ``root``, else ``$BOOK_DATA``, else ``<repo>/data``."""
    if root is not None:
        return Path(root)
    return Path(os.environ.get("BOOK_DATA", Path(__file__).resolve().parents[2] / "data"))


_CIFAR_FILES = {"cifar10": (["data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5"], ["test_batch"]),
                "cifar100": (["train"], ["test"]), "cifar100-coarse": (["train"], ["test"])}
_CIFAR_LABELS = {"cifar10": "labels", "cifar100": "fine_labels", "cifar100-coarse": "coarse_labels"}


def cifar(name: str, *, train: bool = True, root: str | os.PathLike | None = None, device=None,
          dtype=torch.float32) -> tuple[Tensor, Tensor]:
    """CIFAR-10, CIFAR-100 (fine labels) or CIFAR-100 with its 20 coarse labels (Orhan & Pitkow
    §2.3), read from the official python-pickle release unpacked under the data root
    (``cifar-10-batches-py/data_batch_1..5, test_batch``; ``cifar-100-python/train, test``: dicts
    with ``data``, ``N × 3072`` uint8 rows of 1024 red, 1024 green, 1024 blue values, and the
    label lists). We parse the pickles ourselves rather than through torchvision, whose loader
    also checks each file's MD5 sum: that makes it impossible to test the loading path on small
    files in the same layout, which the tests do.

    Returns ``x (N, 3072)`` in [0, 1], channel-major (as torchvision's tensors flattened), and
    labels ``(N,)``. Raises ``FileNotFoundError`` naming the expected folder or file when absent;
    never downloads."""
    if name not in _CIFAR_DIRS:
        raise ValueError(f"dataset {name!r} is not a CIFAR set: use one of {', '.join(_CIFAR_DIRS)}")
    folder = data_root(root) / _CIFAR_DIRS[name]
    if not folder.is_dir():
        raise FileNotFoundError(
            f"dataset {name!r} is not available offline: expected the python release unpacked at "
            f"{folder} (the book never downloads). Copy the official cifar-10-python.tar.gz / "
            f"cifar-100-python.tar.gz there and `tar xzf` it, or point BOOK_DATA (or the chapter's data "
            f"root) at a folder that holds {_CIFAR_DIRS[name]}/; or run the chapter with dataset='digits'."
        )
    xs, ys = [], []
    for fname in _CIFAR_FILES[name][0 if train else 1]:
        path = folder / fname
        if not path.is_file():
            raise FileNotFoundError(f"dataset {name!r}: {path} is missing; the folder {folder} should hold the whole "
                                    f"python release ({', '.join(_CIFAR_FILES[name][0] + _CIFAR_FILES[name][1])})")
        with open(path, "rb") as fh:
            d = pickle.load(fh, encoding="latin1")
        data = np.asarray(d["data"], dtype=np.uint8)
        if data.ndim != 2 or data.shape[1] != 3072 or len(d[_CIFAR_LABELS[name]]) != len(data):
            raise ValueError(f"dataset {name!r}: {path} is not a CIFAR python batch (data {data.shape}, "
                             f"{len(d[_CIFAR_LABELS[name]])} labels)")
        xs.append(data)
        ys.extend(d[_CIFAR_LABELS[name]])
    x = torch.from_numpy(np.concatenate(xs)).to(torch.float64) / 255.0
    return x.to(device=device, dtype=dtype), torch.tensor(ys, device=device)


def load(name: str, *, root: str | os.PathLike | None = None, device=None, dtype=torch.float32) -> tuple[Tensor, Tensor]:
    """A classification dataset by name: ``digits`` (embedded) or a CIFAR set (local files)."""
    if name == "digits":
        return digits(device=device, dtype=dtype)
    if name in _CIFAR_DIRS:
        return cifar(name, root=root, device=device, dtype=dtype)
    raise ValueError(f"unknown dataset {name!r}: use 'digits' (embedded) or one of {', '.join(_CIFAR_DIRS)} (local files)")


def write_tiny_cifar(root: str | os.PathLike, *, n_train: int = 35, n_test: int = 6, seed: int = 0) -> Path:
    """Random images in the official python layout of CIFAR-10 and CIFAR-100 (pickled dicts of
    uint8 rows ``(n, 3072)`` and label lists; CIFAR-10 as five training batches and a test batch),
    under ``root``: what :func:`cifar` must read exactly as it reads the real release. For the tests
    and for runs of a chapter's ``paper`` profile at tiny size (``BOOK_DATA=root``); never real data.
    ``n_train`` images in all (split over CIFAR-10's five batches), ``n_test`` test images."""
    import pickle

    import numpy as np

    rng = np.random.default_rng(seed)
    root = Path(root)

    def dump(path: Path, d: dict) -> None:
        with open(path, "wb") as fh:
            pickle.dump(d, fh)

    c10 = root / _CIFAR_DIRS["cifar10"]
    c10.mkdir(parents=True, exist_ok=True)
    per = [n_train // 5 + (i < n_train % 5) for i in range(5)]
    for name, n in [(f"data_batch_{i + 1}", per[i]) for i in range(5)] + [("test_batch", n_test)]:
        dump(c10 / name, {"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8), "labels": rng.integers(0, 10, n).tolist(),
                          "batch_label": name, "filenames": [f"{name}_{j}.png" for j in range(n)]})
    c100 = root / _CIFAR_DIRS["cifar100"]
    c100.mkdir(parents=True, exist_ok=True)
    for name, n in (("train", n_train), ("test", n_test)):
        dump(c100 / name, {"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8), "fine_labels": rng.integers(0, 100, n).tolist(),
                           "coarse_labels": rng.integers(0, 20, n).tolist(), "filenames": [f"{j}.png" for j in range(n)]})
    return root
