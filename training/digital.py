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
from collections.abc import Callable

import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader

from memxbar.errors import ConfigError

StepHook = Callable[[nn.Module, torch.Generator], None]
LossFn = Callable[[Tensor, Tensor], Tensor]
OPTIMIZERS = ("adam", "sgd")


def _generator(generator: torch.Generator | int | None, device: torch.device) -> torch.Generator:
    if isinstance(generator, torch.Generator):
        return generator
    if generator is not None and (isinstance(generator, bool) or not isinstance(generator, int)):
        raise ConfigError(f"generator = {generator!r}; allowed: None, an int seed or a Generator")
    gen = torch.Generator(device=device)
    return gen.manual_seed(0 if generator is None else generator)


def _optimizer(
    name: str, model: nn.Module, lr: float, weight_decay: float, momentum: float
) -> torch.optim.Optimizer:
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ConfigError("the model has no trainable parameters")
    key = name.lower()
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
    loss stops training with a ``ValueError``.
    """
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise ConfigError(f"epochs = {epochs!r}; allowed: an integer >= 1")
    if not (isinstance(lr, (int, float)) and math.isfinite(lr) and lr > 0):
        raise ConfigError(f"lr = {lr!r}; allowed: a finite number > 0")
    if not (math.isfinite(weight_decay) and weight_decay >= 0):
        raise ConfigError(f"weight_decay = {weight_decay!r}; allowed: a finite number >= 0")
    if not 0 <= momentum < 1:
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
            for batch, (x, y) in enumerate(train_loader):
                x, y = x.to(device), y.to(device)
                if before_step is not None:
                    before_step(model, gen)
                opt.zero_grad(set_to_none=True)
                loss = criterion(model(x), y)
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
    if device is None:
        first = next(model.parameters(), None)
        device = first.device if first is not None else torch.device("cpu")
    was_training = model.training
    model.eval()
    try:
        correct, count = 0, 0
        for x, y in loader:
            x, y = x.to(device), y.to(device)
            correct += int((model(x).argmax(dim=-1) == y).sum())
            count += len(y)
    finally:
        model.train(was_training)
    if count == 0:
        raise ConfigError("loader yielded no samples")
    return correct / count
