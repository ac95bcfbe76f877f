"""Workloads: datasets and reference models for studies (see DESIGN.md, studies/).

Datasets come back as a ``(train, test)`` pair of :class:`torch.utils.data.TensorDataset`,
inputs float32 images shaped ``(N, C, H, W)`` with values in [0, 1], labels int64 class indices.

- ``digits``: scikit-learn's bundled 8x8 handwritten digits (1797 images, ships offline), split
  into train and test with a seeded permutation.
- ``mnist`` / ``fashion-mnist``: the standard IDX files (``train-images-idx3-ubyte``,
  ``train-labels-idx1-ubyte``, ``t10k-images-idx3-ubyte``, ``t10k-labels-idx1-ubyte``, plain or
  ``.gz``) in a local folder; format after LeCun et al., "THE MNIST DATABASE of handwritten
  digits" (file-format section) and Xiao et al. 2017, arXiv:1708.07747 (same format).
- ``cifar10``: the CIFAR-10 "python version" batches (``data_batch_1`` .. ``data_batch_5``,
  ``test_batch``; dicts with ``b"data"`` (N, 3072) uint8 rows in R, G, B plane order and
  ``b"labels"``), after Krizhevsky 2009, "Learning Multiple Layers of Features from Tiny Images",
  and the dataset web page's file description. The pickles are read with a restricted unpickler
  that only rebuilds NumPy arrays, so a tampered file cannot run code.

Reference models are plain ``torch.nn`` modules with ReLU activations: :class:`MLP`,
:class:`LeNet` and :class:`SmallResNet`; :func:`build_model` picks one by name.
"""

from __future__ import annotations

import gzip
import math
import pickle
import zlib
from collections.abc import Callable, Collection, Sequence
from pathlib import Path
from typing import TypeGuard

import numpy as np
import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, TensorDataset

from memxbar.errors import ConfigError

DATASETS = ("digits", "mnist", "fashion-mnist", "cifar10")
MODELS = ("mlp", "lenet", "resnet")
N_CLASSES = {"digits": 10, "mnist": 10, "fashion-mnist": 10, "cifar10": 10}

Split = tuple[TensorDataset, TensorDataset]


# ----------------------------------------------------------------------------- datasets


def _is_pos_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def _check_limit(limit: int | None) -> None:
    if limit is not None and not _is_pos_int(limit):
        raise ConfigError(f"limit = {limit!r}; allowed: None or an integer >= 1")


def _dataset(x: np.ndarray, y: np.ndarray, scale: float, limit: int | None) -> TensorDataset:
    """Images ``x`` (N, C, H, W) divided by ``scale`` and labels ``y`` (N,), first ``limit``."""
    if limit is not None:
        x, y = x[:limit], y[:limit]
    images = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32) / np.float32(scale))
    return TensorDataset(images, torch.from_numpy(np.asarray(y, dtype=np.int64)))


def digits(seed: int = 0, test_fraction: float = 0.25, limit: int | None = None) -> Split:
    """scikit-learn's 8x8 digits, images (N, 1, 8, 8) in [0, 1] (raw 0..16 divided by 16).

    The 1797 samples are split by a permutation drawn from ``torch.Generator`` seeded with
    ``seed``; ``round(1797 * test_fraction)`` go to the test set. ``limit`` keeps at most that
    many samples of each set.
    """
    from sklearn.datasets import load_digits

    if not 0.0 < test_fraction < 1.0:
        raise ConfigError(f"test_fraction = {test_fraction!r}; allowed: a number in (0, 1)")
    _check_limit(limit)
    data = load_digits()
    x = data.images.reshape(-1, 1, 8, 8)
    y = data.target
    n = len(y)
    n_test = round(n * test_fraction)
    if not 1 <= n_test <= n - 1:
        raise ConfigError(
            f"test_fraction = {test_fraction} leaves {n_test} of {n} samples for testing; "
            "both sets need at least one sample"
        )
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed)).numpy()
    test_idx, train_idx = perm[:n_test], perm[n_test:]
    return (
        _dataset(x[train_idx], y[train_idx], 16.0, limit),
        _dataset(x[test_idx], y[test_idx], 16.0, limit),
    )


# IDX element types: the third magic byte -> big-endian NumPy dtype (MNIST file-format section).
_IDX_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


class DatasetFileMissing(ConfigError, FileNotFoundError):
    """A dataset folder or file is not there (a ConfigError: one line from the command line;
    a FileNotFoundError for callers that catch that)."""


def _read_bytes(path: Path) -> bytes:
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise ConfigError(f"{path}: cannot read ({err.strerror or err})") from None
    if raw[:2] == b"\x1f\x8b":  # gzip magic, whatever the file is called
        try:
            return gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as err:
            raise ConfigError(f"{path}: not a readable gzip file ({err})") from None
    return raw


def read_idx(path: str | Path) -> np.ndarray:
    """Read one IDX file (plain or gzip-compressed) into an array of its declared shape.

    The header is two zero bytes, a type byte (0x08 unsigned byte, 0x09 signed byte, 0x0B
    int16, 0x0C int32, 0x0D float32, 0x0E float64), the number of dimensions, then one
    big-endian uint32 per dimension; the data follow in C order.
    """
    path = Path(path)
    if not path.is_file():
        raise DatasetFileMissing(f"IDX file not found: {path}")
    raw = _read_bytes(path)
    if len(raw) < 4:
        raise ConfigError(f"{path}: too short for an IDX header ({len(raw)} bytes)")
    zero, kind, ndim = raw[:2], raw[2], raw[3]
    if zero != b"\x00\x00" or kind not in _IDX_TYPES or ndim == 0:
        raise ConfigError(
            f"{path}: bad IDX magic number 0x{raw[:4].hex()}; expected 0x0000TTDD with type TT "
            f"in {{{', '.join(f'{t:02x}' for t in _IDX_TYPES)}}} and DD >= 1 dimensions"
        )
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ConfigError(f"{path}: header declares {ndim} dimensions but the file ends early")
    shape = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    dtype = np.dtype(_IDX_TYPES[kind])
    expected = header + math.prod(shape) * dtype.itemsize
    if len(raw) != expected:
        raise ConfigError(
            f"{path}: header declares shape {shape} of {dtype.name} ({expected} bytes in all) "
            f"but the file holds {len(raw)} bytes"
        )
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape)


def _find_idx(folder: Path, name: str) -> Path | None:
    """``folder / name``, or its ``.gz``, whichever is a file; None if neither."""
    return next((c for c in (folder / name, folder / f"{name}.gz") if c.is_file()), None)


def _idx_file(folder: Path, name: str) -> Path:
    path = _find_idx(folder, name)
    if path is None:
        raise DatasetFileMissing(f"{name} (or {name}.gz) not found in {folder}")
    return path


def _idx_split(folder: Path, prefix: str, limit: int | None) -> TensorDataset:
    img_path = _idx_file(folder, f"{prefix}-images-idx3-ubyte")
    lbl_path = _idx_file(folder, f"{prefix}-labels-idx1-ubyte")
    images, labels = read_idx(img_path), read_idx(lbl_path)
    if images.ndim != 3 or images.dtype != np.uint8:
        raise ConfigError(
            f"{img_path}: expected unsigned-byte images of 3 dimensions (N, rows, cols), "
            f"got {images.dtype.name} of shape {images.shape}"
        )
    if labels.ndim != 1 or labels.dtype != np.uint8:
        raise ConfigError(
            f"{lbl_path}: expected unsigned-byte labels of 1 dimension, "
            f"got {labels.dtype.name} of shape {labels.shape}"
        )
    if len(labels) != len(images):
        raise ConfigError(f"{lbl_path}: {len(labels)} labels for {len(images)} images in "
                          f"{img_path}")
    if len(labels) and labels.max() > 9:
        raise ConfigError(f"{lbl_path}: label {int(labels.max())} outside the classes 0..9")
    return _dataset(images[:, None], labels, 255.0, limit)


IDX_FILES = tuple(f"{split}-{part}-idx{n}-ubyte" for split in ("train", "t10k")
                  for part, n in (("images", 3), ("labels", 1)))
CIFAR_BATCHES = (*(f"data_batch_{i}" for i in range(1, 6)), "test_batch")


def _cifar_folder(folder: Path) -> Path:
    """``folder``, or its ``cifar-10-batches-py`` subfolder (the official archive's layout)."""
    if not (folder / "test_batch").is_file() and (folder / "cifar-10-batches-py").is_dir():
        return folder / "cifar-10-batches-py"
    return folder


def missing_files(name: str, folder: str | Path) -> list[str]:
    """The files of the built-in dataset ``name`` (mnist, fashion-mnist, cifar10) that
    ``folder`` lacks, so that a study is refused before it trains anything."""
    folder = Path(folder)
    if name == "cifar10":
        where = _cifar_folder(folder)
        return [n for n in CIFAR_BATCHES if not (where / n).is_file()]
    return [n for n in IDX_FILES if _find_idx(folder, n) is None]


def _idx_dataset(folder: str | Path, limit: int | None) -> Split:
    folder = Path(folder)
    if not folder.is_dir():
        raise DatasetFileMissing(f"dataset folder not found: {folder}")
    _check_limit(limit)
    return _idx_split(folder, "train", limit), _idx_split(folder, "t10k", limit)


def mnist(folder: str | Path, limit: int | None = None) -> Split:
    """MNIST from its four IDX files in ``folder``; images (N, 1, 28, 28) in [0, 1].

    ``limit`` keeps at most that many samples of each set (the first ones in file order).
    """
    return _idx_dataset(folder, limit)


def fashion_mnist(folder: str | Path, limit: int | None = None) -> Split:
    """Fashion-MNIST from its four IDX files in ``folder`` (same format and names as MNIST)."""
    return _idx_dataset(folder, limit)


class _ArrayUnpickler(pickle.Unpickler):
    """Unpickler that only rebuilds NumPy arrays and plain containers (no arbitrary code)."""

    _ALLOWED = {
        ("_codecs", "encode"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.core.multiarray", "_reconstruct"),  # NumPy 1 name, kept by NumPy 2 for pickles
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "scalar"),
    }

    def find_class(self, module: str, name: str) -> object:
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}")
        return super().find_class(module, name)


def _cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    try:
        with path.open("rb") as fh:
            batch = _ArrayUnpickler(fh, encoding="bytes").load()
    except Exception as err:  # noqa: BLE001 - a damaged pickle raises nearly anything (an
        # unknown codec name: LookupError; a corrupted length: MemoryError), all the file's fault
        raise ConfigError(f"{path}: not a CIFAR-10 python batch ({type(err).__name__}: "
                          f"{err})") from None
    if not isinstance(batch, dict) or b"data" not in batch or b"labels" not in batch:
        raise ConfigError(f'{path}: expected a dict with keys b"data" and b"labels"')
    data = np.asarray(batch[b"data"])
    labels = np.asarray(batch[b"labels"])
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
        raise ConfigError(
            f"{path}: data must be uint8 of shape (N, 3072), got {data.dtype.name} {data.shape}"
        )
    if labels.shape != (len(data),) or not np.issubdtype(labels.dtype, np.integer):
        raise ConfigError(f"{path}: need {len(data)} integer labels, got shape {labels.shape}")
    if len(labels) and (labels.min() < 0 or labels.max() > 9):
        raise ConfigError(f"{path}: labels outside the classes 0..9")
    return data.reshape(-1, 3, 32, 32), labels


def _cifar_split(folder: Path, names: Sequence[str], limit: int | None) -> TensorDataset:
    xs, ys, count = [], [], 0
    for name in names:
        path = folder / name
        if not path.is_file():
            raise DatasetFileMissing(f"CIFAR-10 batch {name} not found in {folder}")
        x, y = _cifar_batch(path)
        xs.append(x)
        ys.append(y)
        count += len(y)
        if limit is not None and count >= limit:
            break
    return _dataset(np.concatenate(xs), np.concatenate(ys), 255.0, limit)


def cifar10(folder: str | Path, limit: int | None = None) -> Split:
    """CIFAR-10 from its python batches; images (N, 3, 32, 32) in [0, 1].

    ``folder`` holds ``data_batch_1`` .. ``data_batch_5`` and ``test_batch``, or holds the
    ``cifar-10-batches-py`` folder of the official archive. ``limit`` keeps at most that many
    samples of each set and stops reading batches once it has them.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise DatasetFileMissing(f"dataset folder not found: {folder}")
    _check_limit(limit)
    folder = _cifar_folder(folder)
    return _cifar_split(folder, CIFAR_BATCHES[:5], limit), _cifar_split(folder,
                                                                       CIFAR_BATCHES[5:], limit)


def load(
    name: str, folder: str | Path | None = None, seed: int = 0, limit: int | None = None
) -> Split:
    """Load a dataset by name: "digits" (built in; ``seed`` picks its split) or "mnist",
    "fashion-mnist", "cifar10" (read from ``folder``)."""
    key = name.lower().replace("_", "-")
    if key not in DATASETS:
        raise ConfigError(f"unknown dataset {name!r}; known: {', '.join(DATASETS)}")
    if key == "digits":
        return digits(seed=seed, limit=limit)
    if folder is None:
        raise ConfigError(f"dataset {name!r} is read from local files: give its folder")
    readers: dict[str, Callable[..., Split]] = {
        "mnist": mnist,
        "fashion-mnist": fashion_mnist,
        "cifar10": cifar10,
    }
    return readers[key](folder, limit=limit)


def loaders(
    train: TensorDataset, test: TensorDataset, batch_size: int, seed: int = 0
) -> tuple[DataLoader, DataLoader]:
    """``(train_loader, test_loader)``: the train loader shuffles with its own generator seeded
    by ``seed`` (a fresh pair of loaders replays the same batch order); the test loader keeps
    the dataset order."""
    if not _is_pos_int(batch_size):
        raise ConfigError(f"batch_size = {batch_size!r}; allowed: an integer >= 1")
    gen = torch.Generator().manual_seed(seed)
    return (
        DataLoader(train, batch_size=batch_size, shuffle=True, generator=gen),
        DataLoader(test, batch_size=batch_size, shuffle=False),
    )


# ----------------------------------------------------------------------------- models


def _check_shape(in_shape: Sequence[int], n_classes: int, *, image: bool) -> tuple[int, ...]:
    shape = tuple(in_shape)
    if not shape or not all(_is_pos_int(s) for s in shape):
        raise ConfigError(f"in_shape = {in_shape!r}; allowed: a tuple of positive integers")
    if image and len(shape) != 3:
        raise ConfigError(f"in_shape = {shape}; this model needs an image shape (C, H, W)")
    if not _is_pos_int(n_classes) or n_classes < 2:
        raise ConfigError(f"n_classes = {n_classes!r}; allowed: an integer >= 2")
    return shape


class MLP(nn.Module):
    """Multilayer perceptron: flatten, then Linear + ReLU per hidden width, then a Linear head."""

    def __init__(
        self, in_shape: Sequence[int], n_classes: int, hidden: Sequence[int] = (64,)
    ) -> None:
        super().__init__()
        shape = _check_shape(in_shape, n_classes, image=False)
        widths = tuple(hidden)
        if not all(_is_pos_int(w) for w in widths):
            raise ConfigError(f"hidden = {hidden!r}; allowed: a tuple of positive integers")
        layers: list[nn.Module] = [nn.Flatten()]
        n_in = math.prod(shape)
        for width in widths:
            layers += [nn.Linear(n_in, width), nn.ReLU()]
            n_in = width
        layers.append(nn.Linear(n_in, n_classes))
        self.net = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


class LeNet(nn.Module):
    """LeNet-5-style CNN (LeCun et al. 1998): two 5x5 convolutions (6 and 16 channels) each
    followed by ReLU and 2x2 max pooling, then Linear layers of 120, 84 and ``n_classes``.

    Both convolutions pad by 2 ("same" size), so inputs from 4x4 up work: 8x8 digits end in
    a 2x2 map, 28x28 MNIST in 7x7, 32x32 CIFAR-10 in 8x8.
    """

    def __init__(self, in_shape: Sequence[int], n_classes: int) -> None:
        super().__init__()
        c, h, w = _check_shape(in_shape, n_classes, image=True)
        if h < 4 or w < 4:
            raise ConfigError(f"in_shape = {tuple(in_shape)}; LeNet needs images of at least 4x4")
        self.features = nn.Sequential(
            nn.Conv2d(c, 6, 5, padding=2),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(6, 16, 5, padding=2),
            nn.ReLU(),
            nn.MaxPool2d(2),
        )
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(16 * (h // 4) * (w // 4), 120),
            nn.ReLU(),
            nn.Linear(120, 84),
            nn.ReLU(),
            nn.Linear(84, n_classes),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.features(x))


class BasicBlock(nn.Module):
    """Residual basic block (He et al. 2016): two 3x3 conv + BatchNorm, ReLU, and a skip
    connection that is the identity, or a 1x1 conv + BatchNorm when the shape changes."""

    def __init__(self, n_in: int, n_out: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(n_in, n_out, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(n_out)
        self.conv2 = nn.Conv2d(n_out, n_out, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(n_out)
        self.relu = nn.ReLU()
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or n_in != n_out:
            self.shortcut = nn.Sequential(
                nn.Conv2d(n_in, n_out, 1, stride=stride, bias=False), nn.BatchNorm2d(n_out)
            )

    def forward(self, x: Tensor) -> Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + self.shortcut(x))


class SmallResNet(nn.Module):
    """CIFAR-style ResNet (He et al. 2016, Sec. 4.2): a 3x3 stem of ``width`` channels, three
    stages of ``blocks`` basic blocks with ``width``, ``2·width``, ``4·width`` channels (the
    first block of stages 2 and 3 halves the map with stride 2), global average pooling and a
    Linear head. ``width=16, blocks=3`` is ResNet-20; the default ``blocks=2`` is ResNet-14.
    """

    def __init__(
        self, in_shape: Sequence[int], n_classes: int, width: int = 16, blocks: int = 2
    ) -> None:
        super().__init__()
        c, _, _ = _check_shape(in_shape, n_classes, image=True)
        for key, value in (("width", width), ("blocks", blocks)):
            if not _is_pos_int(value):
                raise ConfigError(f"{key} = {value!r}; allowed: an integer >= 1")
        self.stem = nn.Sequential(
            nn.Conv2d(c, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU()
        )
        layers: list[nn.Module] = []
        n_in = width
        for stage in range(3):
            n_out = width * 2**stage
            for b in range(blocks):
                layers.append(BasicBlock(n_in, n_out, stride=2 if stage > 0 and b == 0 else 1))
                n_in = n_out
        self.stages = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(n_in, n_classes))

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.stages(self.stem(x)))


_BUILDERS: dict[str, Callable[..., nn.Module]] = {"mlp": MLP, "lenet": LeNet,
                                                  "resnet": SmallResNet}
MAX_WIDTH = 65_536  # units of one MLP hidden layer
MAX_HIDDEN_LAYERS = 64  # hidden layers of an MLP
MAX_RESNET_WIDTH = 1024  # stem channels of a SmallResNet
MAX_RESNET_BLOCKS = 64  # blocks per stage of a SmallResNet
MAX_IMAGE_SIDE = 4096  # pixels, input height and width
MAX_PARAMETERS = 200_000_000  # weights of one reference model (0.8 GB in float32)


def _option(name: str, key: str, value: object, hi: int) -> int:
    if not _is_pos_int(value) or value > hi:
        raise ConfigError(f"model {name!r}: {key} = {_short(value)}; allowed: an integer in "
                          f"[1, {hi}]")
    return value


def _short(value: object, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def weight_shapes(name: str, in_shape: Sequence[int], n_classes: int,
                  **kw: object) -> list[tuple[int, int]]:
    """``(fan_in, fan_out)`` of every weight matrix of the model :func:`build_model` would
    build (a convolution's as unfolded), computed without building it; checks the options
    (names, types, the ``MAX_*`` bounds of this module) and refuses a model of more than
    :data:`MAX_PARAMETERS` weights."""
    key = name.lower() if isinstance(name, str) else name
    if key not in _BUILDERS:
        raise ConfigError(f"unknown model {_short(name)}; known: {', '.join(MODELS)}")
    known = {"mlp": ("hidden",), "lenet": (), "resnet": ("width", "blocks")}[key]
    extra = [k for k in kw if k not in known]
    if extra:
        raise ConfigError(f"model {name!r}: unknown option {_short(extra[0])}; allowed: "
                          f"{', '.join(known) or 'none'}")
    shape = _check_shape(in_shape, n_classes, image=key != "mlp")
    if any(s > MAX_IMAGE_SIDE for s in shape[-2:]):
        raise ConfigError(f"in_shape = {shape}; allowed: sides up to {MAX_IMAGE_SIDE}")
    if key == "mlp":
        hidden = kw.get("hidden", (64,))
        if not isinstance(hidden, (list, tuple)) or len(hidden) > MAX_HIDDEN_LAYERS:
            raise ConfigError(f"model 'mlp': hidden = {_short(hidden)}; allowed: a list of at "
                              f"most {MAX_HIDDEN_LAYERS} widths, each an integer in "
                              f"[1, {MAX_WIDTH}]")
        widths = [_option("mlp", f"hidden[{i}]", w, MAX_WIDTH) for i, w in enumerate(hidden)]
        sizes = [math.prod(shape), *widths, n_classes]
        out = [(a + 1, b) for a, b in zip(sizes, sizes[1:], strict=False)]
    elif key == "lenet":
        c, h, w = shape
        out = [(c * 25 + 1, 6), (151, 16), (16 * (h // 4) * (w // 4) + 1, 120), (121, 84),
               (85, n_classes)]
    else:
        width = _option("resnet", "width", kw.get("width", 16), MAX_RESNET_WIDTH)
        blocks = _option("resnet", "blocks", kw.get("blocks", 2), MAX_RESNET_BLOCKS)
        out, n_in = [(shape[0] * 9, width)], width
        for stage in range(3):
            n_out = width * 2**stage
            for b in range(blocks):
                out += [(n_in * 9, n_out), (n_out * 9, n_out)]
                if n_in != n_out or (stage > 0 and b == 0):
                    out.append((n_in, n_out))
                n_in = n_out
        out.append((n_in + 1, n_classes))
    n = sum(a * b for a, b in out)
    if n > MAX_PARAMETERS:
        raise ConfigError(f"model {name!r} with {kw or 'its defaults'} has {n:,} weights; "
                          f"allowed: at most {MAX_PARAMETERS:,}")
    return out


def build_model(name: str, in_shape: Sequence[int], n_classes: int, **kw: object) -> nn.Module:
    """Build a reference model by name: "mlp" (:class:`MLP`), "lenet" (:class:`LeNet`) or
    "resnet" (:class:`SmallResNet`); ``kw`` goes to the model (e.g. ``hidden``, ``width``).
    The options are checked first by :func:`weight_shapes` (nothing too large is allocated)."""
    weight_shapes(name, in_shape, n_classes, **kw)
    return _BUILDERS[name.lower()](in_shape, n_classes, **kw)


# ----------------------------------------------------------------------------- your own code


def _as_tensor_dataset(data: object, what: str, split: str) -> TensorDataset:
    """A TensorDataset of ``data``: a TensorDataset, or a map-style dataset of ``(x, y)``
    pairs (stacked), inputs as float32, labels as int64 class indices."""
    if isinstance(data, TensorDataset):
        if len(data.tensors) < 2:
            raise ConfigError(f"{what}: the {split} set holds {len(data.tensors)} tensor(s); "
                              "expected inputs and labels")
        x, y = data.tensors[0], data.tensors[1]
    else:
        try:
            # duck-typed: any map-style dataset; what it raises is caught below
            pairs = [data[i] for i in range(len(data))]  # type: ignore[index, arg-type]
            x = torch.stack([torch.as_tensor(p[0]) for p in pairs])
            y = torch.as_tensor([int(p[1]) for p in pairs])
        except Exception as e:  # anything the user's dataset raises
            raise ConfigError(f"{what}: the {split} set is not a dataset of (input, label) "
                              f"pairs ({type(e).__name__}: {e})") from None
    if len(x) == 0 or len(x) != len(y):
        raise ConfigError(f"{what}: the {split} set has {len(x)} inputs and {len(y)} labels; "
                          "expected the same number, at least one")
    if y.is_floating_point() or y.dim() != 1 or bool((y < 0).any()):
        raise ConfigError(f"{what}: the {split} labels must be one integer class index >= 0 "
                          f"per input; got dtype {y.dtype}, shape {tuple(y.shape)}")
    x = x.to(torch.float32)
    if not bool(torch.isfinite(x).all()):
        raise ConfigError(f"{what}: the {split} inputs have non-finite values")
    return TensorDataset(x, y.to(torch.int64))


def user_dataset(fn: Callable[..., object], *, seed: int, limit: int | None,
                 data_dir: str | None, what: str = "workload.dataset") -> Split:
    """``(train, test)`` from your dataset function: called with those of ``seed``, ``limit``
    and ``data_dir`` that it names as parameters; it returns two datasets (see
    :func:`_as_tensor_dataset`). ``limit`` keeps at most that many examples of each."""
    import inspect

    offered = {"seed": seed, "limit": limit, "data_dir": data_dir}
    try:
        names: Collection[str] = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        names = ()
    try:
        out = fn(**{k: v for k, v in offered.items() if k in names})
    except ConfigError:
        raise
    except Exception as e:  # the user's code failed
        raise ConfigError(f"{what}: your function raised {type(e).__name__}: {e}") from None
    if not isinstance(out, (tuple, list)) or len(out) != 2:
        raise ConfigError(f"{what}: your function returned {type(out).__name__}; expected a "
                          "pair (train set, test set)")
    train, test = (_as_tensor_dataset(d, what, s) for d, s in zip(out, ("train", "test"),
                                                                  strict=True))
    if train.tensors[0].shape[1:] != test.tensors[0].shape[1:]:
        raise ConfigError(f"{what}: train inputs have shape {tuple(train.tensors[0].shape[1:])}"
                          f", test inputs {tuple(test.tensors[0].shape[1:])}; they must match")
    if limit is not None:
        train, test = (TensorDataset(*(t[:limit] for t in d.tensors)) for d in (train, test))
    return train, test


def user_model(fn: Callable[..., object], in_shape: Sequence[int], n_classes: int,
               options: dict[str, object], what: str = "workload.model") -> nn.Module:
    """Your model: ``fn(in_shape, n_classes, **options)``, which must return an nn.Module."""
    try:
        model = fn(tuple(in_shape), n_classes, **options)
    except ConfigError:
        raise
    except Exception as e:  # the user's code failed
        raise ConfigError(f"{what}: your function raised {type(e).__name__}: {e} (it is called "
                          f"as fn(input_shape={tuple(in_shape)}, n_classes={n_classes}, "
                          "**model_options))") from None
    if not isinstance(model, nn.Module):
        raise ConfigError(f"{what}: your function returned {type(model).__name__}; expected "
                          "a torch.nn.Module")
    return model


def module_weight_shapes(model: nn.Module) -> list[tuple[int, int]]:
    """``(fan_in, fan_out)`` of every weight matrix of a built model (a convolution's as
    unfolded; fan_in counts the bias row); like :func:`weight_shapes` for built-ins."""
    out = []
    for module in model.modules():
        w = getattr(module, "weight", None)
        if isinstance(w, Tensor) and w.dim() >= 2:
            bias = getattr(module, "bias", None)
            out.append((w[0].numel() + (1 if isinstance(bias, Tensor) else 0), w.shape[0]))
    n = sum(a * b for a, b in out)
    if n > MAX_PARAMETERS:
        raise ConfigError(f"workload.model: your model has {n:,} weights; allowed: at most "
                          f"{MAX_PARAMETERS:,}")
    return out
