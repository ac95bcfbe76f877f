"""Online (in-situ) training: the analog layers learn on the simulated arrays themselves.

Forward MVMs run through the tiles (``AnalogLinear`` / ``AnalogConv1d/2d/3d`` of
:mod:`memxbar.mapping`), the input gradient of each analog layer is a transposed MVM through the
same arrays (``backward_analog``), and the weight update is a train of device pulses, so the
device's nonlinear, asymmetric, noisy and bounded response, its variability and its stuck
cells all act during training. :class:`AnalogSGD` captures each analog layer's inputs ``x``
and output gradients ``d`` with hooks and turns ``-lr * d^T x`` into pulses:

- ``algorithm="sgd"``: plain analog SGD, one outer-product pulse update per step
  (:meth:`memxbar.crossbar.tile.Tile.update`): stochastic pulse trains (Gokmen & Vlasov,
  Front. Neurosci. 10:333 (2016), ``mode="stochastic"``, ``bl`` pulses per train) or the
  digitally computed count per cell, stochastically rounded (``mode="counts"``).
- ``algorithm="mixed"``: mixed-precision training (Nandakumar et al., Front. Neurosci. 14:406
  (2020)): the weight gradient is accumulated digitally in ``chi`` (one value per weight, in the
  layer's weight units) and a weight receives ``floor(|chi| / eps)`` pulses when ``|chi|``
  reaches ``threshold`` times the weight change ``eps`` of one nominal pulse (Nandakumar:
  ``threshold = 1``); what was applied is taken off ``chi`` (the remainder is kept). Updates
  that cancel over several batches never reach the device, so the drift that asymmetric or
  noisy pulses cause under plain SGD (many opposite pulses that should cancel but do not) is
  avoided, and far fewer pulses are applied. With devices whose every write adds noise (the
  Gong 2018 fits: write noise of ~80 nominal steps) a threshold of tens of steps writes each
  weight rarely and in larger bursts, which keeps that noise from accumulating.

Digital parameters (biases, layers kept digital) get plain SGD (``digital_lr``, ``momentum``).

Refresh (differential encoding). The tile's differential update only potentiates (G+ to
increase a weight, G- to decrease it), so both cells of a pair climb until they saturate and
the weight stops moving. Every ``refresh_every`` steps each pair is read; a pair with a cell
above ``refresh_threshold`` of the conductance range is re-written with the same difference
(``G+ = g_min + max(w, 0) * range``, ``G- = g_min + max(-w, 0) * range``) by
program-and-verify (:func:`memxbar.training.verify.program_verify`, ``method="program"``), as
the refresh of Nandakumar et al. 2020 (reset both devices, re-program the weight). Pairs with a
cell known to be stuck (the fault map of the chip's test, the ``stuck`` latent) are not
refreshed: they cannot be re-written. The offset encoding (one cell, potentiated and
depressed) needs no refresh.

Headroom: the layer's weight scale is fixed when it is programmed, so for training from scratch
map the weights with a fixed bound above the expected weights, e.g.
``MappingConfig(weight_clip="fixed", clip_value=1.0)``, not the default per-column maximum
(which puts the largest initial weight of every column at ``g_max``). Use ideal wires
(``r_row = r_col = 0``): every update re-reads the arrays.

Cost: :class:`TrainingCost` counts update pulses, refresh write pulses and verify reads, the
largest pulse count of any cell (endurance), and the write energy of all of them
(:func:`memxbar.crossbar.cost.program_cost`).
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader

from memxbar.crossbar.cost import CostModel, program_cost
from memxbar.crossbar.tile import MAX_BL
from memxbar.devices import endurance
from memxbar.devices.base import STUCK_NONE
from memxbar.errors import ConfigError, plain_value
from memxbar.mapping.convert import analog_layers
from memxbar.mapping.layers import AnalogConv, AnalogLayer
from memxbar.mapping.tiler import TiledMatrix
from memxbar.training.digital import MAX_SCALE, batches, forward, loss_of
from memxbar.training.verify import program_verify

ALGORITHMS = ("sgd", "mixed")
MODES = ("stochastic", "counts")
LossFn = Callable[[Tensor, Tensor], Tensor]


@dataclass
class TrainingCost:
    """What training wrote to the arrays.

    ``update_pulses``: pulses of the weight updates; ``refresh_pulses``: write pulses of the
    refreshes (program-and-verify); ``verify_reads``: cell reads of refresh checks and
    verification; ``refreshed_cells``: cells re-written; ``max_cell_pulses``: the most pulses
    any one cell received (compare with the device's endurance, ``endurance_used``);
    ``worn_out_cells``: cells of the analog layers worn out now (failed by wear or with less
    than half their window left, :func:`memxbar.devices.endurance.worn_out`; every pulse and
    re-write counts in the cells' ``cycles``);
    ``energy``: write energy (J) of all pulses and reads; ``cells``: cells of the analog layers.
    """

    update_pulses: int = 0
    refresh_pulses: int = 0
    verify_reads: int = 0
    refreshed_cells: int = 0
    max_cell_pulses: int = 0
    endurance_used: float = 0.0
    worn_out_cells: int = 0
    energy: float = 0.0
    cells: int = 0

    @property
    def pulses(self) -> int:
        """All write pulses (updates and refreshes)."""
        return self.update_pulses + self.refresh_pulses

    def as_dict(self) -> dict[str, float]:
        """Plain dict (for tables), with the total ``pulses``."""
        return dict(pulses=self.pulses, update_pulses=self.update_pulses,
                    refresh_pulses=self.refresh_pulses, verify_reads=self.verify_reads,
                    refreshed_cells=self.refreshed_cells, max_cell_pulses=self.max_cell_pulses,
                    endurance_used=self.endurance_used, worn_out_cells=self.worn_out_cells,
                    energy=self.energy, cells=self.cells)


@dataclass
class _Call:
    """One forward call of an analog layer since ``zero_grad``: its inputs ``x`` (N, in) and,
    once a backward reached its output, the output gradient ``d`` (N, out), summed over
    backwards."""

    x: Tensor
    d: Tensor | None = None


@dataclass
class _Layer:
    """Book-keeping of one analog layer."""

    name: str
    module: AnalogLayer
    start_count: Tensor  # the tile's pulse counts when the optimizer was created
    calls: list[_Call] = field(default_factory=list)
    chi: Tensor | None = None
    update_pulses: int = 0
    refresh_pulses: int = 0
    reads: int = 0
    check_reads: int = 0
    refreshed: int = 0
    refresh_energy: float = 0.0
    handles: list[Any] = field(default_factory=list)

    @property
    def tiled(self) -> TiledMatrix:
        """The layer's tiled matrix (AnalogSGD takes programmed layers only)."""
        tiled = self.module.tiled
        assert tiled is not None
        return tiled


def _check_number(name: str, value: object, *, positive: bool = False, below: float = math.inf
                  ) -> float:
    value = plain_value(value)
    if not (isinstance(value, (int, float)) and not isinstance(value, bool)
            and math.isfinite(value) and (value > 0 if positive else value >= 0)
            and value < below):
        rel = "> 0" if positive else ">= 0"
        lim = f" and < {below}" if below < math.inf else ""
        raise ConfigError(f"AnalogSGD: {name} = {value!r} is not allowed; allowed: a finite "
                         f"number {rel}{lim}")
    return float(value)


class AnalogSGD:
    """SGD for models with analog layers, in the ``torch.optim`` style (``zero_grad``,
    ``step``). See the module docstring for the algorithms and the refresh.

    ``model``: converted (:func:`memxbar.mapping.to_analog`) and programmed. ``lr``: learning
    rate of the analog weights (layer weight units, as plain SGD); ``digital_lr`` (default
    ``lr``) and ``momentum`` for the digital parameters. ``mode``, ``bl``: pulse scheme of
    ``algorithm="sgd"``. ``max_pulses``: cap on pulses per weight and step ("mixed").
    ``refresh_every``: steps between refresh checks (0: never); ``refresh_threshold``: fraction
    of the conductance range above which a pair is refreshed; ``refresh_tolerance`` (fraction
    of the range) and ``refresh_max_pulses``: of the program-and-verify re-write.
    ``backward_analog``: input gradients through the arrays (transposed MVM).
    ``recalibrate_every``: steps between ADC re-rangings (0: never): the forward (column) and
    transposed (row) ADC ranges of every analog layer are set anew from that step's layer
    inputs and output gradients, through the updated cells, as a chip re-ranges its converters
    while its weights grow; without it, ranges calibrated on the initial weights saturate.
    ``generator`` drives every stochastic choice (pulse trains, rounding, device noise of
    updates).
    """

    def __init__(self, model: nn.Module, lr: float, *,
                 algorithm: Literal["sgd", "mixed"] = "sgd",
                 mode: Literal["stochastic", "counts"] = "stochastic", bl: int = 31,
                 digital_lr: float | None = None, momentum: float = 0.0,
                 threshold: float = 1.0, max_pulses: int = 1000, refresh_every: int = 10,
                 refresh_threshold: float = 0.9, refresh_tolerance: float = 0.02,
                 refresh_max_pulses: int = 20, backward_analog: bool = True,
                 recalibrate_every: int = 0, generator: torch.Generator | None = None,
                 cost_model: CostModel | None = None) -> None:
        if algorithm not in ALGORITHMS:
            raise ConfigError(f"AnalogSGD: algorithm = {algorithm!r} is not allowed; allowed: "
                             f"{', '.join(ALGORITHMS)}")
        if mode not in MODES:
            raise ConfigError(f"AnalogSGD: mode = {mode!r} is not allowed; allowed: "
                             f"{', '.join(MODES)}")
        self.lr = _check_number("lr", lr, positive=True, below=MAX_SCALE)
        self.digital_lr = self.lr if digital_lr is None else _check_number(
            "digital_lr", digital_lr, positive=True, below=MAX_SCALE)
        momentum = _check_number("momentum", momentum, below=1.0)
        self.threshold = _check_number("threshold", threshold, positive=True)
        if self.threshold < 1.0:
            raise ConfigError(f"AnalogSGD: threshold = {threshold!r} is not allowed; allowed: a "
                             "finite number >= 1 (pulse steps)")
        self.refresh_threshold = _check_number("refresh_threshold", refresh_threshold,
                                               positive=True, below=1.0 + 1e-12)
        self.refresh_tolerance = _check_number("refresh_tolerance", refresh_tolerance,
                                               positive=True)
        bl, max_pulses, refresh_every, refresh_max_pulses, recalibrate_every = (
            plain_value(v) for v in (bl, max_pulses, refresh_every, refresh_max_pulses,
                                     recalibrate_every))
        for name, v, lo, hi in (("bl", bl, 1, MAX_BL), ("max_pulses", max_pulses, 1, None),
                                ("refresh_every", refresh_every, 0, None),
                                ("refresh_max_pulses", refresh_max_pulses, 0, None),
                                ("recalibrate_every", recalibrate_every, 0, None)):
            if isinstance(v, bool) or not isinstance(v, int) or v < lo or (hi and v > hi):
                allowed = f"in [{lo}, {hi}]" if hi else f">= {lo}"
                raise ConfigError(f"AnalogSGD: {name} = {v!r} is not allowed; allowed: an "
                                 f"integer {allowed}")
        self.algorithm, self.mode, self.bl = algorithm, mode, bl
        self.max_pulses, self.refresh_every = max_pulses, refresh_every
        self.refresh_max_pulses = refresh_max_pulses
        self.recalibrate_every = recalibrate_every
        self.generator = generator
        self.cost_model = cost_model
        self.steps = 0
        self._layers: list[_Layer] = []
        analog_params: set[int] = set()
        for name, module in analog_layers(model):
            tiled = module.tiled
            if tiled is None:
                raise ConfigError(f"AnalogSGD: layer {name!r} is not programmed; call "
                                 "memxbar.mapping.program(model, generator=...) first")
            if tiled.groups > 1:
                raise ConfigError(f"AnalogSGD: layer {name!r} is a grouped convolution (groups ="
                                 f" {tiled.groups}); pulse updates support groups = 1")
            if tiled.hardware.n_slices > 1:
                raise ConfigError(f"AnalogSGD: layer {name!r} uses bit slices "
                                 f"({tiled.hardware.n_slices}); pulse updates need one cell "
                                 "per polarity (bits_per_cell = 0)")
            module.backward_analog = bool(backward_analog)
            count = tiled.tile.pulse_count
            assert count is not None  # set with the cells by program()
            layer = _Layer(name, module, start_count=count.clone())
            layer.handles.append(module.register_forward_hook(self._forward_hook(layer)))
            self._layers.append(layer)
            analog_params.add(id(module.weight))
        if not self._layers:
            raise ConfigError("AnalogSGD: the model has no analog layers; convert it with "
                             "memxbar.mapping.to_analog() and program it first")
        self.digital_params = [p for p in model.parameters()
                               if p.requires_grad and id(p) not in analog_params]
        self._digital = (torch.optim.SGD(self.digital_params, lr=self.digital_lr,
                                         momentum=momentum) if self.digital_params else None)
        self._analog_weights = [layer.module.weight for layer in self._layers]

    # ----------------------------------------------------------------- hooks
    def _forward_hook(self, layer: _Layer) -> Callable[..., None]:
        def hook(module: nn.Module, inputs: tuple[Tensor, ...], output: Tensor) -> None:
            if not (torch.is_grad_enabled() and output.requires_grad
                    and layer.module.weight.requires_grad):
                return
            x = inputs[0].detach()
            if isinstance(module, AnalogConv):
                x2 = module.patches(x)[0]

                def grad_2d(g: Tensor) -> Tensor:
                    return g.reshape(g.shape[0], g.shape[1], -1).transpose(1, 2).reshape(
                        -1, g.shape[1])
            else:
                x2 = x.reshape(-1, x.shape[-1])

                def grad_2d(g: Tensor) -> Tensor:
                    return g.reshape(-1, g.shape[-1])
            call = _Call(x2)
            layer.calls.append(call)

            def grad_hook(g: Tensor) -> None:
                d = grad_2d(g.detach())
                call.d = d if call.d is None else call.d + d
            output.register_hook(grad_hook)
        return hook

    def remove_hooks(self) -> None:
        """Detach the optimizer from the model (its forward hooks)."""
        for layer in self._layers:
            for h in layer.handles:
                h.remove()
            layer.handles.clear()

    # ----------------------------------------------------------------- torch.optim API
    def zero_grad(self, set_to_none: bool = True) -> None:
        """Clear gradients (digital and analog master weights) and captured activations."""
        for p in [*self.digital_params, *self._analog_weights]:
            if set_to_none:
                p.grad = None
            elif p.grad is not None:
                p.grad.zero_()
        for layer in self._layers:
            layer.calls.clear()

    @torch.no_grad()
    def step(self) -> None:
        """Apply the captured updates to the arrays as pulses and SGD to digital parameters;
        refresh saturated pairs every ``refresh_every`` steps; re-range the ADCs every
        ``recalibrate_every`` steps.

        Every forward call since :meth:`zero_grad` whose output a backward reached counts,
        its inputs paired with its own output gradient (gradient accumulation over several
        forwards and backwards, a layer used twice in one forward); a call no backward reached
        adds nothing, as it adds nothing to ``weight.grad``. Layers whose weight does not
        require grad (frozen) are neither pulsed nor refreshed."""
        recalibrate = bool(self.recalibrate_every) and (
            (self.steps + 1) % self.recalibrate_every == 0)
        seen: list[tuple[_Layer, Tensor, Tensor]] = []
        for layer in self._layers:
            xs = [c.x for c in layer.calls if c.d is not None]
            ds = [c.d for c in layer.calls if c.d is not None]
            layer.calls.clear()
            if not ds or not layer.module.weight.requires_grad:
                continue
            x = torch.cat(xs) if len(xs) > 1 else xs[0]
            d = torch.cat(ds) if len(ds) > 1 else ds[0]
            tiled = layer.tiled
            state = tiled.tile.state
            assert state is not None  # a programmed layer
            dtype = state.g.dtype
            x, d = x.to(dtype), d.to(dtype)
            if self.algorithm == "sgd":
                layer.update_pulses += tiled.update(
                    x, d, self.lr, generator=self.generator, mode=self.mode, bl=self.bl)
            else:
                layer.update_pulses += self._mixed(layer, x, d)
            if recalibrate:
                seen.append((layer, x, d))
        if self._digital is not None:
            self._digital.step()
        self.steps += 1
        if self.refresh_every and self.steps % self.refresh_every == 0:
            for layer in self._layers:
                if layer.module.weight.requires_grad:
                    self._refresh(layer)
        for layer, x, d in seen:  # through the cells as updated and refreshed
            tiled = layer.tiled
            tiled.calibrate_adc(x)
            if layer.module.backward_analog:
                tiled.calibrate_adc_transposed(d)
        for layer in self._layers:
            if layer.module.weight.requires_grad:
                w = layer.tiled.effective_weight()
                layer.module.weight.copy_(w.reshape(layer.module.weight.shape))

    def _mixed(self, layer: _Layer, x: Tensor, d: Tensor) -> int:
        """Nandakumar et al. 2020: accumulate ``-lr * d^T x`` in chi, pulse whole steps."""
        tiled = layer.tiled
        if layer.chi is None:
            layer.chi = torch.zeros(tiled.out_features, tiled.in_features,
                                    dtype=x.dtype, device=x.device)
        chi = layer.chi
        chi.sub_(self.lr * (d.t() @ x))
        up, down = tiled.pulse_steps()
        up, down = up[:, None], down[:, None]
        n = torch.where(chi > 0, torch.floor(chi / up), -torch.floor(-chi / down))
        if self.threshold > 1.0:
            n = torch.where(n.abs() >= self.threshold, n, 0.0)
        n = n.clamp(-self.max_pulses, self.max_pulses)
        chi.sub_(torch.where(n > 0, n * up, n * down))
        n = n.to(torch.int64)
        if not bool((n != 0).any()):
            return 0
        return tiled.apply_pulses(n, generator=self.generator)

    def _refresh(self, layer: _Layer) -> None:
        """Re-write differential pairs with a cell above the threshold (module doc)."""
        tile = layer.tiled.tile
        cfg = tile.config
        if cfg.encoding != "differential":
            return
        dev = cfg.device
        state = tile.state
        assert state is not None  # AnalogSGD takes programmed layers only
        rng = dev.g_max - dev.g_min
        g = dev.read(state, tile.t, generator=self.generator)
        layer.check_reads += g.numel()
        x = tile.weight_cells((g - dev.g_min) / rng)  # (..., 2, 1, R, wc)
        need = x.amax(dim=(-4, -3)) > self.refresh_threshold
        stuck = state.latent.get("stuck")
        if stuck is not None:
            need &= ~(tile.weight_cells(stuck) != STUCK_NONE).any(-4).any(-3)
        if not bool(need.any()):
            return
        w = tile.weights().clamp(-1.0, 1.0)
        targets = tile.conductance_targets(w)
        planes = need.unsqueeze(-3).unsqueeze(-4).expand(*need.shape[:-2], 2, 1,
                                                         *need.shape[-2:])
        active = tile.physical_cells(planes)
        res = program_verify(dev, targets, state=state, active=active,
                             tolerance=self.refresh_tolerance * rng, method="program",
                             max_pulses=self.refresh_max_pulses,
                             max_iterations=self.refresh_max_pulses, t_read=tile.t,
                             generator=self.generator, cost_model=self.cost_model)
        tile.set_state(res.state, pulses=res.pulses, generator=self.generator)
        layer.refresh_pulses += int(res.pulses.sum())
        layer.reads += int(res.reads.sum())
        layer.refreshed += int(active.sum())
        layer.refresh_energy += res.energy

    def scale_lr(self, factor: float) -> None:
        """Multiply the analog and digital learning rates by ``factor`` (> 0)."""
        factor = _check_number("factor", factor, positive=True)
        self.lr *= factor
        self.digital_lr *= factor
        if self._digital is not None:
            for group in self._digital.param_groups:
                group["lr"] *= factor

    # ----------------------------------------------------------------- reporting
    def cost(self) -> TrainingCost:
        """Pulses, reads and write energy since this optimizer was created."""
        out = TrainingCost()
        for layer in self._layers:
            tile = layer.tiled.tile
            dev = tile.config.device
            state, count = tile.state, tile.pulse_count
            assert state is not None and count is not None  # a programmed layer
            per_cell = count - layer.start_count
            out.update_pulses += layer.update_pulses
            out.refresh_pulses += layer.refresh_pulses
            out.verify_reads += layer.reads + layer.check_reads
            check_reads = layer.check_reads
            out.refreshed_cells += layer.refreshed
            out.cells += per_cell.numel()
            most = int(per_cell.max()) if per_cell.numel() else 0
            out.max_cell_pulses = max(out.max_cell_pulses, most)
            out.endurance_used = max(out.endurance_used, most / dev.endurance)
            out.worn_out_cells += int(endurance.worn_out(dev, state).sum())
            n = max(per_cell.numel(), 1)
            upd = program_cost(dev, n, pulses=layer.update_pulses / n, model=self.cost_model)
            check = program_cost(dev, n, pulses=0.0, verify_iterations=check_reads / n,
                                 model=self.cost_model)
            out.energy += upd.energy + check.energy + layer.refresh_energy
        return out


def train_online(model: nn.Module, train_loader: DataLoader, optimizer: AnalogSGD, *,
                 epochs: int, lr_decay: float = 1.0, loss_fn: LossFn | None = None,
                 progress: Callable[[int, float], None] | None = None) -> list[float]:
    """Train ``model`` through its analog layers with ``optimizer`` (an :class:`AnalogSGD`
    built on it) for ``epochs`` passes over ``train_loader`` of ``(inputs, labels)``.
    ``lr_decay``: learning rates multiplied by it after each epoch (exponential schedule).
    ``loss_fn`` defaults to cross-entropy; ``progress(epoch, loss)`` after each epoch.
    Returns the mean per-sample loss of each epoch; a non-finite loss raises ``ValueError``."""
    epochs, lr_decay = plain_value(epochs), plain_value(lr_decay)
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise ConfigError(f"train_online: epochs = {epochs!r}; allowed: an integer >= 1")
    if not isinstance(optimizer, AnalogSGD):
        raise ConfigError(f"train_online: optimizer = {optimizer!r} is not an AnalogSGD")
    if isinstance(lr_decay, bool) or not isinstance(lr_decay, (int, float)) or not (
            0 < lr_decay <= 1):
        raise ConfigError(f"train_online: lr_decay = {lr_decay!r}; allowed: a number in (0, 1]")
    criterion = loss_fn if loss_fn is not None else nn.functional.cross_entropy
    losses: list[float] = []
    model.train()
    for epoch in range(1, epochs + 1):
        total, count = 0.0, 0
        for batch, (x, y) in enumerate(batches(train_loader, "train_online",
                                                         empty=False)):
            optimizer.zero_grad()
            loss = loss_of(criterion, forward(model, x, "train_online"), y, "train_online",
                           loss_fn is None)
            if not torch.isfinite(loss):
                raise ConfigError(f"online training diverged: loss {loss.item()} at epoch "
                                 f"{epoch}, batch {batch}; try a lower lr")
            loss.backward()
            optimizer.step()
            total += loss.item() * len(y)
            count += len(y)
        if count == 0:
            raise ConfigError("train_loader yielded no samples")
        losses.append(total / count)
        if progress is not None:
            progress(epoch, losses[-1])
        if lr_decay != 1.0:
            optimizer.scale_lr(lr_decay)
    return losses


def chip_in_the_loop(model: nn.Module, train_loader: DataLoader, *, epochs: int, lr: float,
                     algorithm: Literal["sgd", "mixed"] = "mixed", lr_decay: float = 1.0,
                     generator: torch.Generator | None = None,
                     progress: Callable[[int, float], None] | None = None,
                     **options: Any) -> tuple[list[float], TrainingCost]:
    """Fine-tune a programmed analog model through its own (faulty, variable) hardware:
    forward and backward MVMs through the arrays, updates as pulses (:class:`AnalogSGD`
    ``options``), so the healthy cells learn to make up for stuck and mis-programmed ones.
    Returns the epoch losses and the :class:`TrainingCost`; the optimizer's hooks are removed.
    Layers whose weight does not require grad (frozen) are left as they are."""
    allowed = sorted(set(inspect.signature(AnalogSGD.__init__).parameters)
                     - {"self", "model", "lr", "algorithm", "generator"})
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise ConfigError(f"chip_in_the_loop: unknown options {unknown}; allowed: "
                          f"{', '.join(allowed)}")
    opt = AnalogSGD(model, lr, algorithm=algorithm, generator=generator, **options)
    try:
        losses = train_online(model, train_loader, opt, epochs=epochs, lr_decay=lr_decay,
                              progress=progress)
    finally:
        opt.remove_hooks()
    return losses, opt.cost()
