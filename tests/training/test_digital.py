"""Plain digital training loop, its hooks and determinism, and evaluation (training.digital)."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from memxbar.crossbar.tile import TileConfig
from memxbar.devices import IdealDevice
from memxbar.errors import ConfigError
from memxbar.mapping import MappingConfig, program, to_analog
from memxbar.training.digital import evaluate, train
from memxbar.training.hwa import hardware_aware_train
from memxbar.training.online import AnalogSGD, train_online


def _blobs(n: int, seed: int) -> TensorDataset:
    """Three Gaussian classes in 2-D, centres 4 sigma apart (nearly separable)."""
    gen = torch.Generator().manual_seed(seed)
    centres = torch.tensor([[0.0, 0.0], [4.0, 0.0], [0.0, 4.0]])
    y = torch.randint(0, 3, (n,), generator=gen)
    x = centres[y] + torch.randn(n, 2, generator=gen)
    return TensorDataset(x, y)


def _loader(seed: int = 0, n: int = 300, shuffle: bool = True) -> DataLoader:
    gen = torch.Generator().manual_seed(seed)
    return DataLoader(_blobs(n, 1), batch_size=30, shuffle=shuffle, generator=gen)


def _model(seed: int = 0, dropout: float = 0.0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(2, 16), nn.ReLU(), nn.Dropout(dropout), nn.Linear(16, 3))


def test_trains_to_high_accuracy_with_adam_and_sgd() -> None:
    test = DataLoader(_blobs(600, 2), batch_size=200)
    for optimizer, lr in (("adam", 1e-2), ("sgd", 5e-2)):
        model = _model()
        losses = train(model, _loader(), epochs=15, lr=lr, optimizer=optimizer)
        assert len(losses) == 15 and losses[-1] < losses[0] / 2
        # Bayes error of three unit-variance classes 4 sigma apart is about 2 % (Phi(-2) per
        # neighbouring pair); allow a margin for a small net after 15 epochs.
        assert evaluate(model, test) >= 0.93


def test_same_seed_same_result_and_global_rng_untouched() -> None:
    runs = []
    for _ in range(2):
        model = _model(dropout=0.3)
        before = torch.get_rng_state()
        losses = train(model, _loader(), epochs=3, lr=1e-2, generator=7)
        assert torch.equal(torch.get_rng_state(), before)  # caller's global RNG left as it was
        runs.append((losses, [p.detach().clone() for p in model.parameters()]))
    assert runs[0][0] == runs[1][0]
    assert all(torch.equal(a, b) for a, b in zip(runs[0][1], runs[1][1], strict=True))
    # The seed drives dropout (a global-RNG consumer): another seed gives another run.
    other = train(_model(dropout=0.3), _loader(), epochs=3, lr=1e-2, generator=8)
    assert other != runs[0][0]


def test_numpy_scalars_are_the_numbers_they_hold() -> None:
    """Settings swept with numpy (``np.arange``, ``np.float32``) train as the Python values."""
    import numpy as np

    plain = train(_model(), _loader(), epochs=2, lr=1e-2, weight_decay=1e-4, generator=7)
    swept = train(_model(), _loader(), epochs=np.int64(2), lr=np.float64(1e-2),
                  weight_decay=np.float64(1e-4), generator=np.int64(7))
    assert swept == plain
    assert len(train(_model(), _loader(), epochs=1, lr=np.float32(1e-2))) == 1
    with pytest.raises(ValueError, match="epochs = True"):
        train(_model(), _loader(), epochs=np.bool_(True), lr=1e-2)


def test_loader_without_generator_is_seeded_too() -> None:
    data = _blobs(120, 3)
    results = []
    for _ in range(2):
        loader = DataLoader(data, batch_size=30, shuffle=True)  # shuffles from the global RNG
        results.append(train(_model(), loader, epochs=2, lr=1e-2, generator=1))
    assert results[0] == results[1]


def test_hooks_order_and_effect() -> None:
    calls: list[str] = []
    gens: set[int] = set()
    bound = 0.0625  # exact in float32

    def before_step(model: nn.Module, gen: torch.Generator) -> None:
        calls.append("before_step")
        gens.add(id(gen))

    def before_update(model: nn.Module, gen: torch.Generator) -> None:
        calls.append("before_update")
        assert all(p.grad is not None for p in model.parameters())

    def after_step(model: nn.Module, gen: torch.Generator) -> None:
        calls.append("after_step")
        with torch.no_grad():
            for p in model.parameters():
                p.clamp_(-bound, bound)  # weight clipping, as hardware-aware training does

    gen = torch.Generator().manual_seed(0)
    model = _model()
    train(
        model,
        _loader(),
        epochs=2,
        lr=1e-2,
        generator=gen,
        before_step=before_step,
        before_update=before_update,
        after_step=after_step,
    )
    n_steps = 2 * (300 // 30)
    assert calls == ["before_step", "before_update", "after_step"] * n_steps
    assert gens == {id(gen)}
    assert max(float(p.detach().abs().max()) for p in model.parameters()) == bound


def test_loss_fn_is_used() -> None:
    # SGD on 2*L with lr/2 takes exactly the steps of SGD on L with lr (momentum is linear too),
    # so the reported losses differ by the factor 2 along the whole run.
    plain = train(_model(), _loader(), epochs=3, lr=4e-2, optimizer="sgd")

    def doubled(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return 2 * nn.functional.cross_entropy(logits, y)

    scaled = train(_model(), _loader(), epochs=3, lr=2e-2, optimizer="sgd", loss_fn=doubled)
    torch.testing.assert_close(torch.tensor(scaled), 2 * torch.tensor(plain), rtol=1e-4, atol=0)


def test_progress_reports_each_epoch() -> None:
    seen: list[tuple[int, float]] = []
    losses = train(_model(), _loader(), epochs=3, lr=1e-2, progress=lambda *a: seen.append(a))
    assert seen == list(zip([1, 2, 3], losses, strict=True))


def test_evaluate_exact_fraction_and_mode_restored() -> None:
    x = torch.eye(4)
    y = torch.tensor([0, 1, 2, 0])  # identity model predicts 0, 1, 2, 3: three of four right
    model = nn.Linear(4, 4, bias=False)
    with torch.no_grad():
        model.weight.copy_(torch.eye(4))
    model.train()
    acc = evaluate(model, DataLoader(TensorDataset(x, y), batch_size=3))
    assert acc == 0.75 and model.training
    with pytest.raises(ValueError, match="no samples"):
        evaluate(model, DataLoader(TensorDataset(x[:0], y[:0]), batch_size=3))


def test_bad_arguments() -> None:
    loader = _loader()
    with pytest.raises(ValueError, match="optimizer 'rmsprop'.*adam, sgd"):
        train(_model(), loader, epochs=1, lr=1e-2, optimizer="rmsprop")
    with pytest.raises(ValueError, match="epochs"):
        train(_model(), loader, epochs=0, lr=1e-2)
    with pytest.raises(ValueError, match="lr"):
        train(_model(), loader, epochs=1, lr=-1.0)
    with pytest.raises(ValueError, match="generator"):
        train(_model(), loader, epochs=1, lr=1e-2, generator="seed")
    with pytest.raises(ValueError, match="diverged.*epoch 1, batch 0"):
        train(_model(), loader, epochs=1, lr=1e-2, loss_fn=lambda out, y: out.sum() * float("nan"))


def test_bad_batches_and_settings_are_refused_naming_them() -> None:
    """Each used to end in a bare torch or Python error (fuzz_api's training family)."""
    x, y = _blobs(12, 3).tensors
    cases = [
        (dict(optimizer=3), "optimizer 3"),
        (dict(weight_decay="0.1"), "weight_decay"),
        (dict(weight_decay=1e300), r"weight_decay.*\[0, 1e\+06\]"),  # Adam overflowed
        (dict(lr=10**30), r"lr.*\(0, 1e\+06\]"),
        (dict(momentum=None), "momentum"),
    ]
    for kwargs, match in cases:
        with pytest.raises(ValueError, match=match):
            train(_model(), _loader(), epochs=1, **{"lr": 1e-2, **kwargs})
    bad_loaders = [
        (None, "iterable of \\(inputs, labels\\)"),
        ([x], "pairs of tensors"),
        ([(x.long(), y)], "the model refused inputs of shape \\(12, 2\\), torch.int64"),
        ([(x, y[:5])], "one entry per sample"),
        ([(x, y.float())], "class indices, a 1-D integer tensor"),
        ([(x, y + 3)], r"labels span 3 .. 5; allowed: class indices 0 .. 2"),
        ([(x.double(), y)], "the model refused inputs of shape \\(12, 2\\), torch.float64"),
        ([(x[:, :1], y)], "the model refused inputs of shape \\(12, 1\\)"),
    ]
    for loader, match in bad_loaders:
        with pytest.raises(ValueError, match=match):
            train(_model(), loader, epochs=1, lr=1e-2)
        with pytest.raises(ValueError, match=match):
            evaluate(_model(), loader)
    # soft labels (class probabilities) are cross-entropy targets too, in training
    soft = torch.nn.functional.one_hot(y, 3).float()
    assert len(train(_model(), [(x, soft)], epochs=1, lr=1e-2)) == 1


def test_an_empty_batch_is_refused_by_name() -> None:
    x, y = torch.randn(6, 2), torch.zeros(6, dtype=torch.long)
    with pytest.raises(ConfigError, match="empty batch; allowed: batches of at least one"):
        train(_model(), [(x, y), (x[:0], y[:0])], epochs=1, lr=1e-2)
    assert evaluate(_model(), [(x, y), (x[:0], y[:0])]) >= 0.0  # nothing to count: harmless


def test_a_batchnorm_batch_of_one_sample_is_a_config_error() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(2, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 3))
    loader = DataLoader(_blobs(31, 1), batch_size=10)  # the last batch has one sample
    with pytest.raises(ConfigError, match="refused inputs of shape \\(1, 2\\).*drop_last"):
        train(model, loader, epochs=1, lr=1e-2)
    hw = TileConfig(rows=8, cols=16, device=IdealDevice())
    with pytest.raises(ConfigError, match="refused inputs of shape \\(1, 2\\).*drop_last"):
        hardware_aware_train(model, hw, loader, epochs=1, lr=1e-2)


def test_integer_inputs_reach_a_model_that_takes_indices() -> None:
    """A model starting with nn.Embedding trains and evaluates on token indices."""
    g = torch.Generator().manual_seed(3)
    tokens = torch.randint(0, 10, (64, 4), generator=g)
    labels = (tokens[:, 0] >= 5).long()
    torch.manual_seed(0)
    model = nn.Sequential(nn.Embedding(10, 8), nn.Flatten(), nn.Linear(32, 2))
    before = evaluate(model, [(tokens, labels)])
    losses = train(model, DataLoader(TensorDataset(tokens, labels), batch_size=16), epochs=30,
                   lr=1e-2, generator=0)
    assert losses[-1] < 0.5 * losses[0]
    assert evaluate(model, [(tokens, labels)]) > max(before, 0.9)
    hw = TileConfig(rows=32, cols=32, device=IdealDevice(pulse_states=10**5))
    analog = program(to_analog(model, hw, overrides={"0": None},
                               mapping=MappingConfig(weight_clip="fixed", clip_value=4.0)))
    opt = AnalogSGD(analog, 1e-3, algorithm="mixed", generator=torch.Generator())
    assert len(train_online(analog, [(tokens, labels)], opt, epochs=1)) == 1
