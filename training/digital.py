"""Plain digital training and evaluation of any ``torch.nn.Module`` on any ``DataLoader``.

This is the baseline that hardware-aware and online training build on: :func:`train` runs
ordinary minibatch training with cross-entropy (or a given ``loss_fn``), and three optional
hooks let a caller change each step without rewriting the loop (noise injection, clipping,
quantization bookkeeping):

- ``before_step(model, generator)``: before the forward pass of each batch,
- ``before_update(model, generator)``: after ``backward()``, before ``optimizer.step()``,
- ``after_step(model, generator)``: after ``optimizer.step()``.

Determinism: with an integer ``generator`` seed the whole run is reproducible on the same
machine, CPU, thread count and PyTorch version. The seed drives a local ``torch.Generator``
handed to the hooks, and seeds the global RNG inside a forked RNG context, so modules that
draw from the global RNG (dropout, a ``DataLoader`` without its own generator) repeat too,
and the caller's global RNG state is left as it was. Model initialization and the loader's
shuffling order are the caller's: build the model after ``torch.manual_seed`` (or from a
seeded generator) and give the loader a seeded generator. On CUDA some kernels are
nondeterministic unless ``torch.use_deterministic_algorithms(True)`` is set.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader

from memxbar.errors import ConfigError, plain_value, seed_value

StepHook = Callable[[nn.Module, torch.Generator], None]
LossFn = Callable[[Tensor, Tensor], Tensor]
OPTIMIZERS = ("adam", "sgd")
# largest lr, weight decay and noise scale (torch's optimizers overflow float32 near 3e38);
# the studies' bound of these and of the pulse threshold too
MAX_SCALE = 1e6


def _generator(generator: torch.Generator | int | None, device: torch.device) -> torch.Generator:
    if isinstance(generator, torch.Generator):
        return generator
    generator = plain_value(generator)
    if generator is not None and (isinstance(generator, bool) or not isinstance(generator, int)):
        raise ConfigError(f"generator = {generator!r}; allowed: None, an int seed or a Generator")
    gen = torch.Generator(device=device)
    return gen.manual_seed(0 if generator is None else seed_value(generator, "generator"))


def check_model(model: object, where: str) -> None:
    """Refuse a ``model`` that is not a torch module, naming ``where``."""
    if not isinstance(model, nn.Module):
        raise ConfigError(f"{where}: model = {type(model).__name__} is not allowed; allowed: a "
                          "torch.nn.Module")


def batches(loader: Iterable[Any], where: str, *, empty: bool = True
            ) -> Iterator[tuple[Tensor, Tensor]]:
    """The ``(inputs, labels)`` batches of ``loader``, each checked: two tensors of the same
    length (at least one sample unless ``empty``). The inputs' dtype is the model's to judge
    (integer indices for a model that starts with ``nn.Embedding``). ``where`` names the
    caller in the errors."""
    try:
        it = iter(loader)
    except TypeError:
        raise ConfigError(f"{where}: the loader must be an iterable of (inputs, labels) batches "
                          f"(a DataLoader); got {type(loader).__name__}") from None
    for batch in it:
        if not (isinstance(batch, (tuple, list)) and len(batch) == 2
                and all(isinstance(t, Tensor) for t in batch)):
            raise ConfigError(f"{where}: the loader must yield (inputs, labels) pairs of tensors; "
                              f"got {type(batch).__name__}")
        x, y = batch
        if x.dim() == 0 or y.dim() == 0 or len(x) != len(y):
            raise ConfigError(f"{where}: inputs {tuple(x.shape)} and labels {tuple(y.shape)} "
                              "must have one entry per sample (the same first dimension)")
        if not empty and len(x) == 0:
            raise ConfigError(f"{where}: the loader yielded an empty batch; allowed: batches "
                              "of at least one sample")
        yield x, y


def check_labels(logits: Tensor, y: Tensor, where: str, *, soft: bool = False) -> None:
    """Labels of a classifier: class indices (a 1-D integer tensor) in [0, classes), or with
    ``soft`` class probabilities of the logits' shape (cross-entropy takes both)."""
    classes = logits.shape[-1]
    if soft and y.is_floating_point() and y.shape == logits.shape:
        return
    if y.is_floating_point() or y.is_complex() or y.dtype == torch.bool or y.dim() != 1:
        raise ConfigError(f"{where}: labels must be class indices, a 1-D integer tensor; got "
                          f"{y.dtype} of shape {tuple(y.shape)}")
    if not len(y):
        return
    lo, hi = (int(v) for v in torch.aminmax(y))
    if not (0 <= lo and hi < classes):
        raise ConfigError(f"{where}: labels span {lo} .. {hi}; allowed: class indices "
                          f"0 .. {classes - 1} (the model has {classes} outputs)")


def forward(model: nn.Module, x: Tensor, where: str) -> Tensor:
    """``model(x)``, with torch's refusal of the inputs (shape, dtype, device against the
    model's; a batch of one sample in a training-mode BatchNorm) as a ConfigError naming
    them."""
    try:
        return model(x)
    except ConfigError:
        raise
    except (RuntimeError, ValueError) as e:
        hint = ("; allowed: batches of at least 2 samples in training mode (e.g. a DataLoader "
                "with drop_last=True)") if model.training and len(x) == 1 else ""
        raise ConfigError(f"{where}: the model refused inputs of shape {tuple(x.shape)}, "
                          f"{x.dtype}, on {x.device}: {e}{hint}") from e


def loss_of(criterion: LossFn, logits: Tensor, y: Tensor, where: str, default: bool) -> Tensor:
    """``criterion(logits, y)``; where the default cross-entropy refuses the labels, the error
    says which (checked only then: no cost per batch)."""
    try:
        return criterion(logits, y)
    except (RuntimeError, IndexError):
        if default:
            check_labels(logits, y, where, soft=True)
        raise


def _real(x: object) -> bool:
    return not isinstance(x, bool) and isinstance(x, (int, float)) and math.isfinite(x)


def _optimizer(
    name: str, model: nn.Module, lr: float, weight_decay: float, momentum: float
) -> torch.optim.Optimizer:
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ConfigError("the model has no trainable parameters")
    key = name.lower() if isinstance(name, str) else name
    if key == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    if key == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)
    raise ConfigError(f"unknown optimizer {name!r}; known: {', '.join(OPTIMIZERS)}")


def train(
    model: nn.Module,
    train_loader: DataLoader,
    *,
    epochs: int,
    lr: float,
    optimizer: str = "adam",
    weight_decay: float = 0.0,
    momentum: float = 0.9,
    generator: torch.Generator | int | None = None,
    device: str | torch.device = "cpu",
    loss_fn: LossFn | None = None,
    before_step: StepHook | None = None,
    before_update: StepHook | None = None,
    after_step: StepHook | None = None,
    progress: Callable[[int, float], None] | None = None,
) -> list[float]:
    """Train ``model`` in place for ``epochs`` passes over ``train_loader``.

    ``train_loader`` yields ``(inputs, labels)``; ``loss_fn(logits, labels)`` defaults to
    cross-entropy. ``optimizer`` is "adam" or "sgd" (``momentum`` is used by SGD only).
    ``generator`` is an int seed (``None`` means 0) or a ``torch.Generator``; see the module
    docstring for what it makes reproducible. ``progress(epoch, loss)`` is called after each
    epoch (epochs count from 1). Returns the mean per-sample loss of each epoch. A non-finite
    loss stops training with a ``ValueError``; so do batches that are not ``(inputs, labels)``
    tensors of one length of at least one sample, inputs the model refuses, and (with the
    default loss) labels that are not class indices of the model's outputs or class
    probabilities.
    """
    check_model(model, "train")
    epochs, lr, weight_decay, momentum = map(plain_value, (epochs, lr, weight_decay, momentum))
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise ConfigError(f"epochs = {epochs!r}; allowed: an integer >= 1")
    if not (_real(lr) and 0 < lr <= MAX_SCALE):
        raise ConfigError(f"lr = {lr!r}; allowed: a number in (0, {MAX_SCALE:g}]")
    if not (_real(weight_decay) and 0 <= weight_decay <= MAX_SCALE):
        raise ConfigError(f"weight_decay = {weight_decay!r}; allowed: a number in "
                          f"[0, {MAX_SCALE:g}]")
    if not (_real(momentum) and 0 <= momentum < 1):
        raise ConfigError(f"momentum = {momentum!r}; allowed: a number in [0, 1)")
    device = torch.device(device)
    gen = _generator(generator, device)
    model.to(device)
    opt = _optimizer(optimizer, model, float(lr), float(weight_decay), float(momentum))
    criterion = loss_fn if loss_fn is not None else nn.functional.cross_entropy
    # Seed for global-RNG consumers, drawn from the local generator so it follows the seed.
    global_seed = int(torch.randint(2**62, (), generator=gen, device=gen.device))
    fork_devices = [device.index or 0] if device.type == "cuda" else []

    losses: list[float] = []
    with torch.random.fork_rng(devices=fork_devices):
        torch.manual_seed(global_seed)
        model.train()
        for epoch in range(1, epochs + 1):
            total, count = 0.0, 0
            for batch, (x, y) in enumerate(batches(train_loader, "train", empty=False)):
                x, y = x.to(device), y.to(device)
                if before_step is not None:
                    before_step(model, gen)
                opt.zero_grad(set_to_none=True)
                loss = loss_of(criterion, forward(model, x, "train"), y, "train", loss_fn is None)
                if not torch.isfinite(loss):
                    raise ConfigError(
                        f"training diverged: loss {loss.item()} at epoch {epoch}, batch {batch}; "
                        "try a lower lr"
                    )
                loss.backward()
                if before_update is not None:
                    before_update(model, gen)
                opt.step()
                if after_step is not None:
                    after_step(model, gen)
                total += loss.item() * len(y)
                count += len(y)
            if count == 0:
                raise ConfigError("train_loader yielded no samples")
            losses.append(total / count)
            if progress is not None:
                progress(epoch, losses[-1])
    return losses


@torch.no_grad()
def evaluate(
    model: nn.Module, loader: DataLoader, device: str | torch.device | None = None
) -> float:
    """Top-1 accuracy of ``model`` on ``loader``, a fraction in [0, 1].

    Runs in eval mode without gradients and restores the model's previous mode. ``device``
    defaults to that of the model's first parameter (CPU for a model without parameters).
    """
    check_model(model, "evaluate")
    if device is None:
        first = next(model.parameters(), None)
        device = first.device if first is not None else torch.device("cpu")
    was_training = model.training
    model.eval()
    try:
        correct, count = 0, 0
        for x, y in batches(loader, "evaluate"):
            x, y = x.to(device), y.to(device)
            logits = forward(model, x, "evaluate")
            check_labels(logits, y, "evaluate")
            correct += int((logits.argmax(dim=-1) == y).sum())
            count += len(y)
    finally:
        model.train(was_training)
    if count == 0:
        raise ConfigError("loader yielded no samples")
    return correct / count
