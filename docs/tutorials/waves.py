"""Your own dataset and model, as a study file names them: ``dataset = "waves:load"``,
``model = "waves:wavenet"`` (docs/tutorials/own-model.md). Not a tutorial script itself: the
study finds this module next to its study file; ``own_model.py`` imports it.
"""

import math

import torch
from torch import nn
from torch.utils.data import TensorDataset


def waveforms(n: int, length: int = 64, seed: int = 0) -> TensorDataset:
    """Sine (label 0), square (1) and sawtooth (2) waves of random frequency and phase with
    Gaussian noise: inputs (n, 1, length), labels (n,)."""
    gen = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, 3, (n,), generator=gen)
    freq = 1 + 3 * torch.rand(n, 1, generator=gen)
    phase = 2 * math.pi * torch.rand(n, 1, generator=gen)
    arg = 2 * math.pi * freq * torch.linspace(0, 1, length) + phase
    sine, square = torch.sin(arg), torch.sign(torch.sin(arg))
    saw = 2 * torch.remainder(arg / (2 * math.pi), 1.0) - 1
    x = torch.where(labels[:, None] == 0, sine, torch.where(labels[:, None] == 1, square, saw))
    x = x + 0.8 * torch.randn(x.shape, generator=gen)
    return TensorDataset(x[:, None, :], labels)


def load(seed: int = 0) -> tuple[TensorDataset, TensorDataset]:
    """The dataset function of a study: (train, test); a study passes its seed."""
    return waveforms(1500, seed=seed), waveforms(500, seed=seed + 1)


class WaveNet(nn.Module):
    """Two 1-D convolutions, global average pooling, a linear classifier."""

    def __init__(self, n_classes: int = 3, channels: int = 8) -> None:
        super().__init__()
        self.features = nn.Sequential(nn.Conv1d(1, channels, 7, padding=3), nn.ReLU(),
                                      nn.Conv1d(channels, 2 * channels, 5, padding=2), nn.ReLU(),
                                      nn.AdaptiveAvgPool1d(1), nn.Flatten())
        self.classifier = nn.Linear(2 * channels, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


def wavenet(input_shape: tuple[int, ...], n_classes: int, channels: int = 8) -> nn.Module:
    """The model function of a study: ``fn(input_shape, n_classes, **model_options)``."""
    if tuple(input_shape)[:1] != (1,):
        raise ValueError(f"wavenet: input_shape = {input_shape}; allowed: (1, length)")
    return WaveNet(n_classes, channels)
