"""Whole models onto crossbar hardware: convert, program, age, report."""

from __future__ import annotations

import copy
import warnings
from collections.abc import Iterable, Mapping

import pandas as pd
import torch
from torch import Tensor, nn

from memxbar.crossbar.tile import TileConfig
from memxbar.errors import ConfigError
from memxbar.mapping.calibration import calibrate
from memxbar.mapping.config import MappingConfig
from memxbar.mapping.layers import (
    DIGITAL_PARTS,
    AnalogLayer,
    AnalogMultiheadAttention,
    analog_layers,
)
from memxbar.mapping.layers.base import check_generator
from memxbar.mapping.layers.registry import Unsupported, converter_for

Override = TileConfig | None
REPORT_ATTRIBUTE = "analog_report"
ELEMENTWISE = (nn.modules.batchnorm._NormBase, nn.LayerNorm, nn.GroupNorm, nn.RMSNorm,
               nn.PReLU)
_ELEMENTWISE_REASON = "elementwise parameters (no matrix-vector product): digital"


def module_names(model: nn.Module) -> dict[int, list[str]]:
    """Every qualified name of every module (a module used twice has two)."""
    names: dict[int, list[str]] = {}
    for name, m in model.named_modules(remove_duplicate=False):
        names.setdefault(id(m), []).append(name)
    return names


def check_overrides(where: str, model: nn.Module, overrides: Mapping[str, Override] | None
                    ) -> dict[str, Override]:
    """``overrides`` as a dict, refused (naming ``where``) unless every key names a module of
    ``model`` (any of a shared module's names) and every value is a TileConfig or None."""
    out = dict(overrides or {})
    for name, hw in out.items():
        if hw is not None and not isinstance(hw, TileConfig):
            raise ConfigError(f"{where}: overrides[{name!r}] = {hw!r} is not allowed; "
                              "allowed: a TileConfig or None")
    known = {n for n, _ in model.named_modules(remove_duplicate=False)}
    unknown = sorted(set(out) - known)
    if unknown:
        raise ConfigError(f"{where}: overrides name unknown modules {unknown}; allowed: "
                          f"{sorted(n for n in known if n)}")
    return out


def module_override(where: str, module: nn.Module, names: Mapping[int, list[str]],
                    overrides: Mapping[str, Override], inherited: Override, source: str
                    ) -> tuple[Override, str]:
    """The hardware of ``module`` and the override name it comes from: the override of any of
    its ``names`` (:func:`module_names`; those of one shared module must agree), else the
    ``inherited`` hardware of its container (from ``source``)."""
    mine = {n: overrides[n] for n in names.get(id(module), []) if n in overrides}
    if len({id(v) for v in mine.values()}) > 1:
        raise ConfigError(f"{where}: overrides give different hardware to the names "
                          f"{sorted(mine)} of one shared module")
    if mine:
        name, hw = next(iter(mine.items()))
        return hw, name
    return inherited, source


def to_analog(model: nn.Module, hardware: TileConfig, *, mapping: MappingConfig | None = None,
              overrides: Mapping[str, Override] | None = None,
              strict: bool = False) -> nn.Module:
    """A converted deep copy of ``model``: every module with a registered analog replacement
    (:mod:`memxbar.mapping.layers.registry`: ``nn.Linear``, ``nn.Conv1d/2d/3d`` including
    grouped and depthwise, ``nn.MultiheadAttention``, transformer encoder layers) runs on
    ``hardware``. A module used in several places stays one (analog) module.

    ``overrides`` maps qualified module names (as in ``model.named_modules()``) to another
    :class:`TileConfig` (another tile size or device) or to ``None`` (keep it digital); an
    override of a container applies to everything inside it; a part of a module replaced as a
    whole (``attn.out_proj`` of an ``nn.MultiheadAttention``) cannot be overridden (refused).
    A subclass with its own ``forward`` stays digital (reported). Converted modules keep the
    original's ``training`` flag. A model that already holds analog modules is refused
    (convert its digital original again). The copy is not programmed yet:
    call :func:`program`. Its conversion report (:func:`conversion_report`) lists every module
    with weights, analog or digital and why; a module with weights left digital for another
    reason than an override or elementwise parameters is warned about (``warnings.warn``), or
    refused with ``strict=True``.
    """
    if not isinstance(model, nn.Module):
        raise ConfigError(f"to_analog: model = {type(model).__name__} is not a torch.nn.Module")
    if not isinstance(hardware, TileConfig):
        raise ConfigError(f"to_analog: hardware = {hardware!r} is not allowed; allowed: a "
                         "TileConfig (keep single modules digital with overrides={name: None})")
    if mapping is not None and not isinstance(mapping, MappingConfig):
        raise ConfigError(f"to_analog: mapping = {mapping!r} is not a MappingConfig")
    overrides = check_overrides("to_analog", model, overrides)
    held = [n or "<model>" for n, m in model.named_modules()
            if isinstance(m, (AnalogLayer, AnalogMultiheadAttention))]
    if held:
        raise ConfigError(f"to_analog: model already holds analog modules {held[:5]}; allowed: "
                         "a digital model (convert the digital original again, with the new "
                         "hardware and overrides)")
    new = copy.deepcopy(model)
    names = module_names(new)
    memo: dict[int, nn.Module] = {}
    why: dict[int, str] = {}

    def visit(m: nn.Module, inherited: Override, source: str) -> nn.Module:
        if id(m) in memo:
            return memo[id(m)]
        hw, source = module_override("to_analog", m, names, overrides, inherited, source)
        out = m
        if hw is None:
            why[id(m)] = f"override None ({source!r})" if source else "override None"
        else:
            convert = converter_for(m)
            if convert is not None:
                try:
                    out = convert(m, hw, mapping)
                except Unsupported as e:
                    why[id(m)] = str(e)
        memo[id(m)] = out
        if out is not m:
            out.train(m.training)  # a new module starts in training mode
        elif isinstance(m, nn.MultiheadAttention) and hw is not None and id(m) in why:
            # its forward reads out_proj.weight directly: out_proj stays digital with it
            for sub in m.modules():
                if sub is not m:
                    why[id(sub)] = f"inside digital {type(m).__name__} ({why[id(m)]})"
        else:
            for key, child in list(m._modules.items()):
                if child is not None:
                    m._modules[key] = visit(child, hw, source)
        return out

    by_name = {n: i for i, ns in names.items() for n in ns}
    new = visit(new, hardware, "")
    skipped = sorted(n for n in overrides if by_name[n] not in memo)
    if skipped:
        raise ConfigError(f"to_analog: overrides name {skipped}, parts of a module that is "
                         "replaced (or kept digital) as a whole (nn.MultiheadAttention's "
                         "out_proj); allowed: overrides of the enclosing module, e.g. "
                         f"{sorted({n.rsplit('.', 1)[0] for n in skipped})}")
    report = _report(new, why)
    setattr(new, REPORT_ATTRIBUTE, report)
    _warn(report, strict)
    return new


def _report(model: nn.Module, why: dict[int, str]) -> pd.DataFrame:
    rows = []
    for name, m in model.named_modules():
        params = sum(p.numel() for p in m.parameters(recurse=False))
        if isinstance(m, AnalogLayer):
            rows.append(dict(module=name, type=type(m).__name__, analog=True, parameters=params,
                             reason="runs on the crossbar arrays; bias digital"))
        elif isinstance(m, AnalogMultiheadAttention):
            rows.append(dict(module=name, type=type(m).__name__, analog=False,
                             parameters=params, reason="projections analog; " + DIGITAL_PARTS))
        elif params:
            reason = why.get(id(m))
            if reason is None:
                reason = (_ELEMENTWISE_REASON if isinstance(m, ELEMENTWISE) else
                          f"unsupported type {type(m).__name__}: no analog replacement is "
                          "registered")
            rows.append(dict(module=name, type=type(m).__name__, analog=False,
                             parameters=params, reason=reason))
    return pd.DataFrame(rows, columns=["module", "type", "analog", "parameters", "reason"])


def _warn(report: pd.DataFrame, strict: bool) -> None:
    quiet = report.reason.str.startswith("override None") | (
        report.reason == _ELEMENTWISE_REASON) | (report.type == "AnalogMultiheadAttention")
    left = report[~report.analog & ~quiet]
    if left.empty:
        return
    text = "; ".join(f"{r.module or '<model>'} ({r.reason})" for r in left.itertuples())
    msg = f"to_analog: modules with weights stay digital: {text}"
    if strict:
        raise ConfigError(msg + " (strict=True; keep them digital explicitly with "
                          "overrides={name: None})")
    warnings.warn(msg, stacklevel=3)


def conversion_report(model: nn.Module) -> pd.DataFrame:
    """The report of :func:`to_analog` for ``model``: one row per module with weights
    (``module``, ``type``, ``analog``, ``parameters``, ``reason``)."""
    report = getattr(model, REPORT_ATTRIBUTE, None)
    if not isinstance(report, pd.DataFrame):
        raise ConfigError("conversion_report: the model was not converted by to_analog()")
    return report.copy()


def _layers(model: nn.Module) -> list[tuple[str, AnalogLayer]]:
    layers = list(analog_layers(model))
    if not layers:
        raise ConfigError("the model has no analog layers; convert it with to_analog() first")
    return layers


@torch.no_grad()
def program(model: nn.Module, *, generator: torch.Generator | None = None,
            calibration: Tensor | Iterable[Tensor] | None = None) -> nn.Module:
    """Program every analog layer with its current weights (t = 0).

    ``generator``: the programming and later read noise (default: a private generator, seed
    0 — never torch's global one). ``calibration``: example model inputs (a tensor or
    batches) used to set ADC ranges when a layer's ADC range is "calibrated" or
    "per_column", and input ranges when its input scaling is "calibrated". Returns ``model``.
    """
    layers = _layers(model)
    check_generator("program", generator)
    if generator is None:
        w = layers[0][1].weight
        generator = torch.Generator(device=w.device).manual_seed(0)
    for _, layer in layers:
        layer.program(generator=generator)
    needs = [layer for _, layer in layers
             if (layer.hardware.adc.bits and layer.hardware.adc.range_mode != "fixed")
             or layer.mapping.input_scaling == "calibrated"]
    if needs:
        if calibration is None:
            raise ConfigError("program: an ADC range mode is 'calibrated' or 'per_column', or the "
                             "input scaling is 'calibrated'; pass calibration=<example inputs> "
                             "to set the ranges")
        calibrate(model, calibration)
    return model


@torch.no_grad()
def drift(model: nn.Module, t: float, *, generator: torch.Generator | None = None) -> nn.Module:
    """Read every analog layer ``t`` seconds after programming (with ``generator``, else the
    one it was programmed with). Returns ``model``."""
    check_generator("drift", generator)
    for _, layer in _layers(model):
        layer.drift(t, generator=generator)
    return model


def mapping_report(model: nn.Module) -> pd.DataFrame:
    """One row per analog layer: shape, groups, tiles, arrays, the weights one tile holds
    (rows x weight columns: a 256 x 256 tile holds 256 x 128 weights with differential pairs
    on two columns), cells used and utilization."""
    rows = []
    for name, layer in _layers(model):
        hw = layer.hardware
        out_f, in_f = layer.matrix_shape
        tiled = layer.tiled if layer.tiled is not None else layer._new_tiled()
        rows.append(dict(layer=name, kind=type(layer).__name__, inputs=in_f, outputs=out_f,
                         device=type(hw.device).__name__, tile=f"{hw.rows}x{hw.cols}",
                         encoding=hw.encoding, layout=hw.layout,
                         cells_per_weight=hw.cells_per_weight, **tiled.report()))
    return pd.DataFrame(rows)
