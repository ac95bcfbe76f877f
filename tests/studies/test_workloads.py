"""Datasets (digits split, IDX and CIFAR-10 readers) and reference models of studies.workloads."""

from __future__ import annotations

import gzip
import os
import pickle
import re
import struct
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from memxbar.errors import ConfigError
from memxbar.studies import workloads as W
from memxbar.training.digital import evaluate, train

# ----------------------------------------------------------------------------- digits


def test_digits_split_sizes_ranges_and_partition() -> None:
    from sklearn.datasets import load_digits

    ref = load_digits()
    train_set, test_set = W.digits(seed=0)
    x_tr, y_tr = train_set.tensors
    x_te, y_te = test_set.tensors
    assert len(test_set) == round(1797 * 0.25) == 449 and len(train_set) == 1348
    assert x_tr.shape[1:] == (1, 8, 8) and x_tr.dtype == torch.float32
    assert y_tr.dtype == torch.int64
    for x in (x_tr, x_te):
        assert float(x.min()) == 0.0 and float(x.max()) == 1.0
    # The two sets partition the 1797 images: same label histogram, same pixel sum (raw / 16).
    counts = torch.bincount(torch.cat([y_tr, y_te]), minlength=10).numpy()
    np.testing.assert_array_equal(counts, np.bincount(ref.target, minlength=10))
    total = float(x_tr.double().sum() + x_te.double().sum())
    assert total == pytest.approx(ref.images.sum() / 16.0, rel=1e-12)
    # Each image is one of the originals with its own label.
    i = 7
    row = (x_tr[i, 0].double().numpy() * 16).round()
    match = np.flatnonzero((ref.images == row).all(axis=(1, 2)))
    assert len(match) >= 1 and int(y_tr[i]) in ref.target[match]


def test_digits_seeded_split_is_deterministic() -> None:
    a_tr, a_te = W.digits(seed=3)
    b_tr, b_te = W.digits(seed=3)
    c_tr, _ = W.digits(seed=4)
    assert torch.equal(a_tr.tensors[0], b_tr.tensors[0])
    assert torch.equal(a_te.tensors[1], b_te.tensors[1])
    assert not torch.equal(a_tr.tensors[0], c_tr.tensors[0])
    small_tr, small_te = W.digits(seed=0, test_fraction=0.5, limit=100)
    assert len(small_tr) == 100 and len(small_te) == 100
    assert len(W.digits(test_fraction=0.5)[1]) == round(1797 * 0.5)


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.1, 1e-6])
def test_digits_bad_fraction(fraction: float) -> None:
    with pytest.raises(ValueError, match="test_fraction"):
        W.digits(test_fraction=fraction)


# ----------------------------------------------------------------------------- IDX files


def _idx_bytes(array: np.ndarray, type_byte: int = 0x08) -> bytes:
    """Encode an array in the IDX format, written from the format description."""
    header = bytes([0, 0, type_byte, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


def _write_idx(folder: Path, name: str, array: np.ndarray, gz: bool) -> Path:
    data = _idx_bytes(array)
    path = folder / (name + (".gz" if gz else ""))
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


def _make_mnist(folder: Path, gz: bool, n_train: int = 5, n_test: int = 3) -> dict:
    rng = np.random.default_rng(1)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte": rng.integers(0, 10, n_train, dtype=np.uint8),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": rng.integers(0, 10, n_test, dtype=np.uint8),
    }
    arrays["train-images-idx3-ubyte"][0, 0, 0] = 255
    for name, array in arrays.items():
        _write_idx(folder, name, array, gz)
    return arrays


@pytest.mark.parametrize("gz", [False, True])
def test_mnist_reader_plain_and_gzip(tmp_path: Path, gz: bool) -> None:
    arrays = _make_mnist(tmp_path, gz)
    for reader in (W.mnist, W.fashion_mnist):
        train_set, test_set = reader(tmp_path)
        x, y = train_set.tensors
        assert x.shape == (5, 1, 28, 28) and x.dtype == torch.float32 and y.dtype == torch.int64
        np.testing.assert_allclose(x[:, 0].numpy(), arrays["train-images-idx3-ubyte"] / 255.0)
        np.testing.assert_array_equal(y.numpy(), arrays["train-labels-idx1-ubyte"])
        assert float(x.max()) == 1.0
        np.testing.assert_array_equal(test_set.tensors[1].numpy(), arrays["t10k-labels-idx1-ubyte"])
    limited, _ = W.load("fashion-mnist", tmp_path, limit=2)
    assert len(limited) == 2


def test_read_idx_other_types(tmp_path: Path) -> None:
    a = np.arange(-6, 6, dtype=np.int16).reshape(3, 4)
    path = tmp_path / "a.idx"
    path.write_bytes(_idx_bytes(a, 0x0B))
    out = W.read_idx(path)
    assert out.shape == (3, 4)
    np.testing.assert_array_equal(out, a)


def test_idx_errors_name_the_file(tmp_path: Path) -> None:
    arrays = _make_mnist(tmp_path, gz=False)
    bad = tmp_path / "train-images-idx3-ubyte"
    good = bad.read_bytes()
    bad.write_bytes(b"\x12\x34" + good[2:])
    with pytest.raises(ValueError, match="train-images-idx3-ubyte.*magic"):
        W.mnist(tmp_path)
    bad.write_bytes(good[:-10])  # truncated data
    with pytest.raises(ValueError, match="train-images-idx3-ubyte.*shape"):
        W.mnist(tmp_path)
    bad.write_bytes(good)
    _write_idx(tmp_path, "t10k-labels-idx1-ubyte", arrays["t10k-labels-idx1-ubyte"][:2], gz=False)
    with pytest.raises(ValueError, match="t10k-labels-idx1-ubyte.*2 labels for 3 images"):
        W.mnist(tmp_path)
    os.remove(tmp_path / "t10k-labels-idx1-ubyte")
    with pytest.raises(FileNotFoundError, match="t10k-labels-idx1-ubyte") as info:
        W.mnist(tmp_path)
    assert isinstance(info.value, ConfigError)  # one line from the command line
    (tmp_path / "t10k-labels-idx1-ubyte.gz").write_bytes(b"\x1f\x8bnot really gzip")
    with pytest.raises(ValueError, match="t10k-labels-idx1-ubyte.gz.*gzip"):
        W.mnist(tmp_path)
    damaged = bytearray(gzip.compress(good))  # a gzip stream with a damaged block: zlib.error
    damaged[12:16] = b"\xff\xff\xff\xff"
    (tmp_path / "t10k-labels-idx1-ubyte.gz").write_bytes(bytes(damaged))
    with pytest.raises(ConfigError, match="t10k-labels-idx1-ubyte.gz: not a readable gzip"):
        W.mnist(tmp_path)
    with pytest.raises(FileNotFoundError, match="nowhere"):
        W.mnist(tmp_path / "nowhere")


# ----------------------------------------------------------------------------- CIFAR-10


def _cifar_batch(path: Path, n: int, seed: int) -> tuple[np.ndarray, list[int]]:
    rng = np.random.default_rng(seed)
    data = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
    labels = [int(v) for v in rng.integers(0, 10, n)]
    with path.open("wb") as fh:
        pickle.dump({b"batch_label": b"test", b"data": data, b"labels": labels}, fh, protocol=2)
    return data, labels


def test_cifar_reader(tmp_path: Path) -> None:
    root = tmp_path / "cifar-10-batches-py"
    root.mkdir()
    batches = [_cifar_batch(root / f"data_batch_{i}", 2, i) for i in range(1, 6)]
    test_data, test_labels = _cifar_batch(root / "test_batch", 3, 9)
    for folder in (root, tmp_path):  # the batches folder or the folder above it
        train_set, test_set = W.cifar10(folder)
        x, y = train_set.tensors
        assert x.shape == (10, 3, 32, 32) and x.dtype == torch.float32 and y.dtype == torch.int64
        assert y.tolist() == sum((b[1] for b in batches), [])
        # Row layout: 1024 red values, then green, then blue, each row-major 32x32.
        row = batches[0][0][1]
        np.testing.assert_allclose(x[1, 0].numpy(), row[:1024].reshape(32, 32) / 255.0)
        np.testing.assert_allclose(x[1, 2, 5, 7].item(), row[2048 + 5 * 32 + 7] / 255.0, rtol=1e-6)
        assert test_set.tensors[1].tolist() == test_labels
    assert len(W.load("cifar10", root, limit=3)[0]) == 3


def test_cifar_refuses_bad_files(tmp_path: Path) -> None:
    _cifar_batch(tmp_path / "data_batch_1", 2, 0)
    with pytest.raises(FileNotFoundError, match="data_batch_2"):
        W.cifar10(tmp_path)
    with (tmp_path / "data_batch_1").open("wb") as fh:  # a pickle that would call a function
        pickle.dump({b"data": os.getcwd}, fh)
    with pytest.raises(ValueError, match="data_batch_1.*refusing"):
        W.cifar10(tmp_path)
    with (tmp_path / "data_batch_1").open("wb") as fh:
        pickle.dump({b"data": np.zeros((2, 100), np.uint8), b"labels": [0, 1]}, fh)
    with pytest.raises(ValueError, match=r"data_batch_1.*\(N, 3072\)"):
        W.cifar10(tmp_path)
    # damaged bytes: a codec name no Python knows (LookupError inside the unpickler)
    _cifar_batch(tmp_path / "data_batch_1", 2, 0)
    raw = (tmp_path / "data_batch_1").read_bytes()
    assert b"latin1" in raw
    (tmp_path / "data_batch_1").write_bytes(raw.replace(b"latin1", b"lbtin1"))
    with pytest.raises(ConfigError, match="data_batch_1: not a CIFAR-10 python batch"):
        W.cifar10(tmp_path)


# ----------------------------------------------------------------------------- dispatch


def test_load_and_loaders() -> None:
    train_set, test_set = W.load("digits", seed=1)
    assert torch.equal(train_set.tensors[1], W.digits(seed=1)[0].tensors[1])
    with pytest.raises(ValueError, match="digits, mnist, fashion-mnist, cifar10"):
        W.load("imagenet")
    with pytest.raises(ValueError, match="folder"):
        W.load("mnist")
    a1, t1 = W.loaders(train_set, test_set, batch_size=64, seed=5)
    a2, _ = W.loaders(train_set, test_set, batch_size=64, seed=5)
    first = [y for _, y in a1]
    assert all(torch.equal(u, v) for u, v in zip(first, [y for _, y in a2], strict=True))
    assert not torch.equal(torch.cat(first), train_set.tensors[1])  # shuffled
    assert torch.equal(torch.cat([y for _, y in t1]), test_set.tensors[1])  # in order
    with pytest.raises(ValueError, match="batch_size"):
        W.loaders(train_set, test_set, batch_size=0)


# ----------------------------------------------------------------------------- models

SHAPES = [(1, 8, 8), (1, 28, 28), (3, 32, 32)]


@pytest.mark.parametrize("name", W.MODELS)
@pytest.mark.parametrize("shape", SHAPES)
def test_model_forward_shapes(name: str, shape: tuple[int, int, int]) -> None:
    torch.manual_seed(0)
    model = W.build_model(name, shape, 10)
    out = model(torch.rand(2, *shape))
    assert out.shape == (2, 10) and torch.isfinite(out).all()


def test_model_structure() -> None:
    mlp = W.MLP((1, 8, 8), 10, hidden=(32, 16))
    linears = [m for m in mlp.modules() if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(64, 32), (32, 16), (16, 10)]
    # ResNet-20 (He et al. 2016, Table 6: 0.27M parameters) with 1x1 projection shortcuts.
    resnet20 = W.SmallResNet((3, 32, 32), 10, width=16, blocks=3)
    n_params = sum(p.numel() for p in resnet20.parameters())
    projections = 16 * 32 + 32 * 64 + 2 * (32 + 64)  # 1x1 convs and their BatchNorms
    assert n_params - projections == 269_722
    assert round(n_params / 1e6, 2) == 0.27
    convs = [m for m in resnet20.modules() if isinstance(m, torch.nn.Conv2d)]
    assert sum(m.kernel_size == (3, 3) for m in convs) == 1 + 3 * 3 * 2  # 19 conv + 1 fc = 20


def test_basic_block_has_skip_connection() -> None:
    block = W.BasicBlock(4, 4, stride=1).eval()
    torch.nn.init.zeros_(block.bn2.weight)  # residual branch outputs 0: block is relu(x)
    x = torch.randn(3, 4, 5, 5, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(block(x), torch.relu(x))


def test_model_errors() -> None:
    with pytest.raises(ValueError, match="mlp, lenet, resnet"):
        W.build_model("vgg", (1, 8, 8), 10)
    with pytest.raises(ValueError, match="lenet"):
        W.build_model("lenet", (1, 8, 8), 10, hidden=(3,))
    with pytest.raises(ValueError, match="image shape"):
        W.LeNet((64,), 10)
    with pytest.raises(ValueError, match="n_classes"):
        W.MLP((64,), 1)
    with pytest.raises(ValueError, match="hidden"):
        W.MLP((64,), 10, hidden=(0,))


# ----------------------------------------------------------------------------- training


def _digits_mlp(seed: int) -> tuple[float, list[float], float]:
    train_set, test_set = W.digits(seed=0)
    train_loader, test_loader = W.loaders(train_set, test_set, batch_size=32, seed=seed)
    torch.manual_seed(seed)
    model = W.build_model("mlp", (1, 8, 8), 10)
    start = time.perf_counter()
    losses = train(model, train_loader, epochs=10, lr=3e-3, generator=seed)
    return evaluate(model, test_loader), losses, time.perf_counter() - start


def test_digits_mlp_trains_and_is_reproducible() -> None:
    acc, losses, seconds = _digits_mlp(seed=0)
    print(f"digits MLP: test accuracy {acc:.4f} after 10 epochs in {seconds:.2f} s")
    assert acc >= 0.90
    assert losses[-1] < losses[0] / 5
    acc2, losses2, _ = _digits_mlp(seed=0)
    assert acc2 == acc and losses2 == losses


@pytest.mark.parametrize("name, shape, options", [
    ("mlp", (1, 8, 8), {"hidden": [16, 8]}), ("mlp", (1, 8, 8), {"hidden": []}),
    ("lenet", (1, 28, 28), {}), ("lenet", (3, 32, 32), {}),
    ("resnet", (3, 32, 32), {}), ("resnet", (1, 8, 8), {"width": 8, "blocks": 3}),
])
def test_weight_shapes_match_the_built_model(name, shape, options) -> None:
    model = W.build_model(name, shape, 10, **options)
    weights = sum(p.numel() for m in model.modules() if isinstance(m, (nn.Linear, nn.Conv2d))
                  for p in m.parameters())
    assert sum(a * b for a, b in W.weight_shapes(name, shape, 10, **options)) == weights


@pytest.mark.parametrize("options, text", [
    ({"hidden": [100_000_000]}, "hidden[0] = 100000000; allowed: an integer in [1, 65536]"),
    ({"hidden": [60_000] * 3}, "weights; allowed: at most 200,000,000"),
    ({"hidden": [8] * 65}, "at most 64 widths"),
    ({"hidden": "64"}, "hidden = '64'"),
    ({"width": 3}, "unknown option 'width'; allowed: hidden"),
])
def test_absurd_models_are_refused_before_allocating(options, text) -> None:
    import resource
    import time

    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    with pytest.raises(ConfigError, match=re.escape(text)):
        W.build_model("mlp", (1, 8, 8), 10, **options)
    assert time.perf_counter() - start < 1.0
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 100_000  # < 100 MB
