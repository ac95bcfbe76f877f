"""Hardware-aware (offline) training: train a digital model so that it survives programming
onto crossbars of a given device, then program it with :func:`memxbar.mapping.to_analog`.

:func:`hardware_aware_train` runs :func:`memxbar.training.digital.train` with three hooks:

- ``before_step``: every weight matrix that ``to_analog`` puts on arrays (``nn.Linear``, the
  convolutions of any dimension, groups and padding, the input projections of
  ``nn.MultiheadAttention``) is replaced by what the hardware would realise: the matrix is
  mapped onto a :class:`~memxbar.mapping.TiledMatrix` of the target
  :class:`~memxbar.crossbar.tile.TileConfig` exactly as ``to_analog`` will map it (scaling and
  clipping, encoding, conductance targets, level quantization), the cells are programmed
  through the device model (programming noise, stuck cells), read at ``t_inference`` (drift or
  relaxation) with the mapping's drift compensation, and one read-noise sample is added;
  ``W <- W + noise_scale * (W_hardware - W)``. One fresh draw per batch.
- ``before_update``: the clean weights are put back, so the gradient computed at the perturbed
  weights updates the clean ones (straight-through; the noise-injection training of Joshi et
  al., Nat. Commun. 11:2473 (2020), with the noise taken from the device model itself).
- ``after_step``: weights are clipped to ``clip_sigma`` standard deviations (per output, or per
  layer for ``weight_scaling="layer"``), so that the mapping's scale (largest weight -> g_max)
  is not set by a few outliers and the typical weight uses more of the conductance range.

Periphery (``periphery=True``): the forward of ``nn.Linear`` and ungrouped, zero-padded
``nn.Conv2d`` layers runs a differentiable model of the tile's
converters through the hardware's own DAC and ADC objects with straight-through rounding
(``DAC.quantize`` and ``ADC.quantize`` with ``ste=True``): inputs scaled as the mapping scales
them (per vector for "dynamic", ``input_range`` for "fixed", and for "calibrated" one range
per layer, the largest ``|input|`` of the batch, as calibration sets it) and quantized by the
DAC; one partial sum per row block of ``rows`` inputs and row group
of ``rows_parallel`` of them (a tile's ADC conversion, in units of
``V_read * (g_max - g_min)``) with the tile's output noise, quantized by the ADC at the full
scales its ``ADC.full_scales`` gives for the largest values of the batch per converter and
row group (fixed, one per tile or one per column, the digital stand-in for the calibration);
the partial sums are added digitally and scaled back. Bit-serial DAC cycles, bit slices and
the offset reference column are not modelled separately (one conversion per weight column,
row block and row group). Other layers train with the weight noise only; a warning names
them when their converters quantize.

Vectorized: each perturbation is one tile programming and read per layer; no per-cell loops.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn import functional as F
from torch.utils.data import DataLoader

from memxbar.crossbar.periphery import ADC, DAC
from memxbar.crossbar.readout import read_time
from memxbar.crossbar.tile import TileConfig
from memxbar.errors import ConfigError, plain_value
from memxbar.mapping.convert import (
    check_overrides,
    drift,
    module_names,
    module_override,
    program,
    to_analog,
)
from memxbar.mapping.layers import converter_for
from memxbar.mapping.tiler import MappingConfig, TiledMatrix
from memxbar.training.digital import (
    MAX_SCALE,
    LossFn,
    _generator,
    check_model,
    evaluate,
    train,
)

Override = TileConfig | None
MAX_REPEATS = 10_000  # programming draws of one analog_accuracy (and of one study design)


@dataclass
class _Layer:
    name: str
    module: nn.Module
    hardware: TileConfig
    tiled: TiledMatrix
    param: str = "weight"  # the module's parameter that the arrays hold
    periphery: bool = False  # the straight-through DAC/ADC forward applies
    clean: Tensor | None = None

    @property
    def weight(self) -> Tensor:
        w = getattr(self.module, self.param)
        assert isinstance(w, Tensor)
        return w


def _matrices(module: nn.Module) -> list[tuple[str, int]]:
    """``(parameter name, groups)`` of the weight matrices ``to_analog`` maps onto arrays for
    ``module`` (its own parameters; sub-modules such as ``out_proj`` are found themselves)."""
    if isinstance(module, (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)):
        return [("weight", 1 if isinstance(module, nn.Linear) else module.groups)]
    if isinstance(module, nn.MultiheadAttention):
        if module.in_proj_weight is not None:
            return [("in_proj_weight", 1)]
        return [(n, 1) for n in ("q_proj_weight", "k_proj_weight", "v_proj_weight")]
    return []


def _periphery_covered(module: nn.Module) -> bool:
    return type(module) is nn.Linear or (isinstance(module, nn.Conv2d) and (
        module.groups == 1 and not isinstance(module.padding, str)
        and module.padding_mode == "zeros"))


def _hardware_of(model: nn.Module, hardware: TileConfig,
                 overrides: Mapping[str, Override]) -> list[tuple[str, nn.Module, Override]]:
    """``(name, module, hardware)`` of every module once (its first name), with the overrides
    applied as ``to_analog`` applies them: a module takes the override of any of its names
    (names of one shared module must agree), else inherits its container's."""
    names = module_names(model)
    out: list[tuple[str, nn.Module, Override]] = []
    seen: set[int] = set()

    def visit(m: nn.Module, inherited: Override) -> None:
        if id(m) in seen:
            return
        seen.add(id(m))
        hw, _ = module_override("hardware_aware_train", m, names, overrides, inherited, "")
        out.append((names[id(m)][0], m, hw))
        for child in m.children():
            visit(child, hw)

    visit(model, hardware)
    return out


def _find_layers(model: nn.Module, hardware: TileConfig, mapping: MappingConfig,
                 overrides: Mapping[str, Override] | None) -> list[_Layer]:
    """The weight matrices that ``to_analog`` would put on arrays, with their noise tiles
    (overrides as ``to_analog`` reads them)."""
    if not isinstance(hardware, TileConfig):
        raise ConfigError(f"hardware_aware_train: hardware = {hardware!r} is not a TileConfig")
    overrides = check_overrides("hardware_aware_train", model, overrides)
    layers, uncovered, no_periphery = [], [], []
    for name, module, hw in _hardware_of(model, hardware, overrides):
        if hw is None:
            continue
        matrices = _matrices(module) if converter_for(module) is not None else []
        if not matrices:
            if converter_for(module) is not None and any(
                    True for _ in module.parameters(recurse=False)):
                uncovered.append(f"{name or '(model)'} ({type(module).__name__})")
            continue
        periphery = _periphery_covered(module)
        if not periphery and (hw.dac.bits or hw.adc.bits or hw.out_noise > 0):
            no_periphery.append(f"{name or '(model)'} ({type(module).__name__})")
        noise_hw = dataclasses.replace(
            hw, dac=DAC(), adc=ADC(), out_noise=0.0,
            read_noise="off" if hw.read_noise == "off" else "per_mvm")
        for param, groups in matrices:
            w = getattr(module, param)
            tiled = TiledMatrix(noise_hw, int(w[0].numel()), w.shape[0], mapping, groups=groups)
            layers.append(_Layer(name, module, hw, tiled, param, periphery))
    if uncovered:  # to_analog runs them analog; the noise model here covers fewer types
        warnings.warn("hardware_aware_train: " + ", ".join(uncovered) + " will run analog "
                      "after to_analog but train without hardware noise", stacklevel=3)
    if no_periphery:
        warnings.warn("hardware_aware_train: " + ", ".join(no_periphery) + " train with the "
                      "hardware's weight noise but without its DAC/ADC quantization (the "
                      "straight-through periphery covers nn.Linear and ungrouped, zero-padded "
                      "nn.Conv2d)", stacklevel=3)
    if not layers:
        raise ConfigError("hardware_aware_train: the model has no layer with weights that "
                          "to_analog puts on the hardware")
    first: dict[int, _Layer] = {}
    for layer in layers:  # a tied weight gets one draw per step: from one hardware
        other = first.setdefault(id(layer.weight), layer)
        if other.hardware != layer.hardware:
            raise ConfigError(f"hardware_aware_train: layers {other.name!r} and {layer.name!r} "
                              "share one weight (tied) but have different hardware (overrides)"
                              "; allowed: the same hardware for the layers of a tied weight, "
                              "or untied copies")
    return layers


@torch.no_grad()
def hardware_weights(tiled: TiledMatrix, weight: Tensor, t: float, *,
                     generator: torch.Generator | None = None) -> Tensor:
    """One draw of the weights (out, in) that the hardware realises for ``weight`` (out, in):
    programmed onto ``tiled`` (noise, quantization, faults), read ``t`` s later with the
    mapping's drift compensation, plus one read-noise sample. Layer units."""
    tiled.program(weight, generator=generator)
    if t > 0 or tiled.mapping.compensation != "none":
        tiled.set_time(t, generator=generator)
    w = tiled.effective_weight().to(weight.dtype)
    if tiled.hardware.read_noise != "off":
        std = tiled.weight_variance().sqrt().to(weight.dtype)
        if bool((std > 0).any()):
            w = w + std * torch.randn(w.shape, generator=generator, dtype=w.dtype,
                                      device=w.device)
    return w


def _periphery_forward(layer: _Layer, mapping: MappingConfig,
                       current: dict[str, torch.Generator]) -> Callable[[Tensor], Tensor]:
    """A forward of ``layer.module`` with straight-through DAC/ADC rounding (module doc);
    output noise draws from ``current["gen"]`` (the training generator, set each step)."""
    assert isinstance(layer.module, (nn.Linear, nn.Conv2d))  # _periphery_covered
    module: nn.Linear | nn.Conv2d = layer.module
    hw = layer.hardware
    rows, wc = hw.rows, hw.weight_cols
    rp = min(hw.rows_parallel or rows, rows)  # rows per conversion
    ng = -(-rows // rp)  # row groups per tile
    tiled = layer.tiled

    def matmul(x: Tensor) -> Tensor:  # (B, in) -> (B, out)
        w = module.weight.reshape(module.weight.shape[0], -1)
        out_f, in_f = w.shape
        if mapping.input_scaling == "fixed":
            a = torch.full((x.shape[0], 1), float(mapping.input_range), dtype=x.dtype,
                           device=x.device)
        elif mapping.input_scaling == "calibrated":  # one range per layer: the batch's largest
            r = x.detach().abs().amax() if x.numel() else x.new_zeros(())
            a = torch.where(r > 0, r, torch.ones_like(r)).expand(x.shape[0], 1)
        else:
            a = x.detach().abs().amax(dim=1, keepdim=True)
            a = torch.where(a > 0, a, torch.ones_like(a))
        ir = float(hw.dac.input_range)
        xq = hw.dac.quantize((x / a).clamp(-1.0, 1.0), ste=True) / ir
        scale = tiled.weight_bounds(w.detach() if layer.clean is None else layer.clean)
        wn = w / scale[:, None]  # the hardware weights, normalised as programmed
        nrb = -(-in_f // rows)
        pad = nrb * rows - in_f

        def groups(t: Tensor) -> Tensor:  # (n, in) -> (n, row blocks, row groups, rp)
            t = F.pad(t, (0, pad)).reshape(t.shape[0], nrb, rows)
            return F.pad(t, (0, ng * rp - rows)).reshape(t.shape[0], nrb, ng, rp)

        # one conversion per row block, row group and output, units U
        part = torch.einsum("bkgr,okgr->bkgo", groups(xq), groups(wn))
        if hw.out_noise > 0:
            part = part + hw.out_noise * torch.randn(part.shape, generator=current.get("gen"),
                                                     dtype=part.dtype, device=part.device)
        adc = hw.adc
        if adc.bits:
            # largest |output| of the batch per converter, grouped by tile (row block x column
            # block) and row group (a row group ranges like a tile of its own, as in the tile)
            ncb = -(-out_f // wc)
            m = F.pad(part.detach().abs().amax(dim=0), (0, ncb * wc - out_f))
            fs = adc.full_scales(m.reshape(nrb, ng, ncb, wc)).flatten(-2)[..., :out_f]
            part = adc.quantize(part, fs, ste=True)
        return part.sum(dim=(1, 2)) * (ir * a) * scale

    if isinstance(module, nn.Linear):
        def forward(x: Tensor) -> Tensor:
            y = matmul(x.reshape(-1, module.in_features)).reshape(*x.shape[:-1], -1)
            return y if module.bias is None else y + module.bias
        return forward

    conv: nn.Conv2d = module
    padding = conv.padding
    assert not isinstance(padding, str)  # _find_layers takes numeric padding only

    def forward_conv(x: Tensor) -> Tensor:
        n = x.shape[0]
        cols = F.unfold(x, conv.kernel_size, conv.dilation, padding, conv.stride)
        y = matmul(cols.transpose(1, 2).reshape(-1, cols.shape[1]))
        h, w_ = (
            (x.shape[d + 2] + 2 * padding[d] - conv.dilation[d]
             * (conv.kernel_size[d] - 1) - 1) // conv.stride[d] + 1 for d in (0, 1))
        y = y.reshape(n, h * w_, -1).transpose(1, 2).reshape(n, -1, h, w_)
        return y if module.bias is None else y + module.bias[:, None, None]
    return forward_conv


def _clip(layer: _Layer, sigma: float, per_output: bool) -> None:
    w = layer.weight
    m = w.detach().reshape(w.shape[0], -1)
    if per_output:
        bound = sigma * m.std(dim=1, keepdim=True)
    else:
        bound = sigma * m.std().expand(m.shape[0], 1)
    w.copy_(torch.maximum(torch.minimum(m, bound), -bound).reshape(w.shape))


def hardware_aware_train(model: nn.Module, hardware: TileConfig, train_loader: DataLoader, *,
                         epochs: int, lr: float, t_inference: float = 0.0,
                         noise_scale: float = 1.0, mapping: MappingConfig | None = None,
                         overrides: Mapping[str, Override] | None = None,
                         clip_sigma: float | None = 2.5, periphery: bool = True,
                         optimizer: str = "adam", weight_decay: float = 0.0,
                         momentum: float = 0.9, generator: torch.Generator | int | None = None,
                         device: str | torch.device = "cpu", loss_fn: LossFn | None = None,
                         progress: Callable[[int, float], None] | None = None) -> list[float]:
    """Train the digital ``model`` in place for the hardware (module doc); returns the epoch
    losses. Then convert with ``to_analog(model, hardware, mapping=mapping)`` and program.

    ``t_inference``: seconds after programming at which the weights are read during training
    (drift, relaxation, read noise; e.g. one year for PCM). ``noise_scale``: multiplies the
    deviation of the hardware weights from the clean ones (1 = the device model as is).
    ``mapping`` (default ``MappingConfig(compensation="global")``) and ``overrides`` as in
    :func:`memxbar.mapping.to_analog`: use the same ones when programming. ``clip_sigma``:
    weight clipping after each step (None: off; weights that do not require grad, frozen, are
    not clipped). ``periphery``: straight-through DAC/ADC model in the forward pass. A
    parameter shared by several layers (tied weights) gets one perturbation per step and is
    restored and clipped once. ``optimizer``, ``lr``, ``weight_decay``, ``momentum``,
    ``generator``, ``device``, ``loss_fn``, ``progress``: as
    :func:`memxbar.training.digital.train`.
    """
    check_model(model, "hardware_aware_train")
    t_inference, noise_scale, clip_sigma = map(plain_value, (t_inference, noise_scale,
                                                             clip_sigma))
    if not (isinstance(t_inference, (int, float)) and not isinstance(t_inference, bool)
            and math.isfinite(t_inference) and t_inference >= 0):
        raise ConfigError(f"hardware_aware_train: t_inference = {t_inference!r}; allowed: a "
                         "finite number of seconds >= 0")
    if not (isinstance(noise_scale, (int, float)) and not isinstance(noise_scale, bool)
            and 0 <= noise_scale <= MAX_SCALE):
        raise ConfigError(f"hardware_aware_train: noise_scale = {noise_scale!r}; allowed: a "
                         f"number in [0, {MAX_SCALE:g}]")
    noise_scale = float(noise_scale)
    if clip_sigma is not None and not (isinstance(clip_sigma, (int, float))
                                       and math.isfinite(clip_sigma) and clip_sigma > 0):
        raise ConfigError(f"hardware_aware_train: clip_sigma = {clip_sigma!r}; allowed: None or "
                         "a finite number > 0")
    mapping = mapping or MappingConfig(compensation="global")
    layers = _find_layers(model, hardware, mapping, overrides)
    per_output = mapping.weight_scaling == "column"
    t = float(t_inference)

    current: dict[str, torch.Generator] = {}

    # a parameter shared by several layers (tied weights) is perturbed, restored and clipped
    # once, by its first layer; the others read its clean copy
    owners = list({id(layer.weight): layer for layer in layers[::-1]}.values())

    def before_step(m: nn.Module, gen: torch.Generator) -> None:
        current["gen"] = gen
        with torch.no_grad():
            cleans: dict[int, Tensor] = {}
            for layer in layers:
                w = layer.weight
                if id(w) in cleans:
                    layer.clean = cleans[id(w)]
                    continue
                clean = w.detach().reshape(w.shape[0], -1).clone()
                layer.clean = cleans[id(w)] = clean
                hard = hardware_weights(layer.tiled, clean, t, generator=gen)
                w.copy_((clean + noise_scale * (hard - clean)).reshape(w.shape))

    def before_update(m: nn.Module, gen: torch.Generator) -> None:
        _restore()

    def after_step(m: nn.Module, gen: torch.Generator) -> None:
        if clip_sigma is not None:
            with torch.no_grad():
                for layer in owners:
                    if layer.weight.requires_grad:  # frozen weights are not the optimizer's
                        _clip(layer, float(clip_sigma), per_output)

    @torch.no_grad()
    def _restore() -> None:
        """Put the clean weights back (once per parameter)."""
        for layer in owners:
            if layer.clean is not None:
                layer.weight.copy_(layer.clean.reshape(layer.weight.shape))
        for layer in layers:
            layer.clean = None

    saved: list[tuple[nn.Module, Any]] = []
    if periphery:
        for layer in layers:
            hw = layer.hardware
            if layer.periphery and (hw.dac.bits or hw.adc.bits or hw.out_noise > 0):
                saved.append((layer.module, layer.module.__dict__.get("forward")))
                # an instance attribute shadows the class's forward until the finally below
                layer.module.forward = _periphery_forward(layer, mapping, current)
    try:
        return train(model, train_loader, epochs=epochs, lr=lr, optimizer=optimizer,
                     weight_decay=weight_decay, momentum=momentum, generator=generator,
                     device=device,
                     loss_fn=loss_fn, before_step=before_step, before_update=before_update,
                     after_step=after_step, progress=progress)
    finally:
        for module, fwd in saved:
            if fwd is None:
                del module.forward
            else:
                module.forward = fwd
        _restore()  # interrupted inside a step: put the clean weights back


def analog_accuracy(model: nn.Module, hardware: TileConfig, loader: DataLoader, *,
                    t: float = 0.0, mapping: MappingConfig | None = None,
                    overrides: Mapping[str, Override] | None = None, repeats: int = 1,
                    calibration: Tensor | Iterable[Tensor] | None = None,
                    generator: torch.Generator | int | None = None) -> list[float]:
    """Test accuracy of ``model`` programmed onto ``hardware`` and read ``t`` s later, once per
    programming draw (``repeats`` fresh conversions of the same trained weights).
    ``mapping`` defaults to ``MappingConfig(compensation="global")``; ``calibration``: example
    inputs for calibrated ADC ranges. ``generator``: a Generator or an int seed (``None``
    means seed 0, as :func:`~memxbar.mapping.program`; never torch's global RNG); all repeats
    draw from it in turn, so each is a different programming and the spread is the
    device's."""
    repeats, t = plain_value(repeats), read_time(t, "analog_accuracy")
    if isinstance(repeats, bool) or not isinstance(repeats, int) or not (
            1 <= repeats <= MAX_REPEATS):
        raise ConfigError(f"analog_accuracy: repeats = {repeats!r}; allowed: an integer from 1 "
                          f"to {MAX_REPEATS}")
    mapping = mapping or MappingConfig(compensation="global")
    first = next(model.parameters(), None)
    gen = _generator(generator, first.device if first is not None else torch.device("cpu"))
    accs = []
    for _ in range(repeats):
        analog = to_analog(model, hardware, mapping=mapping, overrides=overrides)
        program(analog, generator=gen, calibration=calibration)
        if t > 0:
            drift(analog, t, generator=gen)
        accs.append(evaluate(analog, loader))
    return accs
