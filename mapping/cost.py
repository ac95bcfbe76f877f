"""Cost of a whole converted model: energy per inference, latency, area, TOPS/W, per layer and
per component (see :mod:`memxbar.crossbar.cost` for the component models and their sources).

:func:`estimate_cost` runs the programmed model once on an example input, captures the input of
every analog layer with forward hooks, and costs each layer's tile MVMs on exactly those inputs
(the same scaling and DAC codes the simulation uses). Figures are per inference: totals divided
by the example's batch size (its first dimension).

Beyond the tile components ("cells", "dac", "decoder", "mux", "write" (level shifters, area
only), "adc", "shift_add", "buffer" input reads), a layer adds "accumulate": the digital
addition of the partial sums of its row blocks; "function": the digital activation and pooling
modules that run after it in the forward pass (ReLU-type activations: one ``activation_bits``
comparison per element; max or average pooling: ``inputs - outputs`` comparisons or additions,
exact for windows that tile their input), costed as ``activation_bits``-wide additions, with
``bus_width / activation_bits`` lanes of adder + register per module in the area (other digital
modules, such as sigmoid, tanh or normalisation, and functional calls are not costed); "buffer":
its output activations written to the activation buffer (``activation_bits`` each);
"interconnect": every input and output activation bit of the layer moved between the global
buffer and the layer's tiles over the chip's H-tree (root-to-leaf length ``L``, the side of the
square chip; ``bus_activity / 2 * wire_capacitance * L * vdd^2`` per bit); "leakage":
``leakage_density`` x chip area x pipeline period (``1 / throughput``), shared among the layers
by their area. A layer called several times per inference (a shared module, a cross-attention
projection) moves the activations of every call; its buffers hold the largest call.

Cells: only the cells that hold weights are read and programmed (the used rows and the physical
columns of the used weight columns: both devices of a differential pair, every bit slice and
array, the offset reference column; :func:`memxbar.crossbar.cost.weight_cells`); padding cells
are neither read nor programmed (their rows are not driven, their columns float), so the cost
is the same whether a layer is simulated on its used part (ideal wires) or on the whole array.

Weight layers left digital (``overrides={name: None}``, unsupported types; the modules with
weights of :func:`memxbar.mapping.conversion_report`, less the elementwise ones) are not
costed: :attr:`CostReport.digital` lists them with their MACs, ``summary()`` says so, and the
energy, ops and TOPS/W cover the analog layers only. Activation and pooling modules that run
after a digital weight layer are billed to nobody.

Not costed: the digital rescaling of each output (the input scale times the weight scale, one
multiplication per output and inference). Drift compensation
(``MappingConfig.drift_compensation``) multiplies the same outputs by its per-layer or
per-column gain, so in hardware it folds into that one multiplication and adds no per-inference
cost here either; its reference reads, made once per read time (re-calibration), are amortised
over the inferences and not costed.

Weight duplication (``duplication``, NeuroSim's pipeline speed-up): a layer mapped ``k`` times
has ``k`` times its tiles (area, programming) and splits its MVMs among the copies (latency /
k); its energy per inference is unchanged except through the chip size (interconnect length)
and the pipeline period (leakage).

Latency: the tiles of a layer work in parallel on one input vector at a time; a convolution
takes one MVM per output position; layers run in sequence (``latency``). Pipelined throughput
(``throughput``): every layer on its own tiles, a new inference enters when the slowest layer
is free. Interconnect and buffer access times are not in the latency. Ops are ``2 * MACs`` of
the mapped layers. Area: the tiles of every layer (times its copies; the tiles of a row block
share one input register, as they share the input vector), the accumulators of the partial sums,
a tile-level activation buffer per layer holding one input of the layer (SRAM bit cells or a
register file, ``buffer_type``), a global activation buffer holding the largest input plus
output of any layer, and the H-tree: ``bus_width`` wires at ``wire_pitch`` along its whole
length (``sum_k 2^k L / 2^(ceil(k/2)+1)`` over its ``log2(nodes)`` levels, one leaf per
``arrays_per_node`` arrays). Programming: every device of every cell holding weights of every
layer copy, one row of a tile at a time, programmed by the device's program-and-verify loop
(``Device.program_iterations`` pulses and ``verify_reads`` verify reads per device,
``devices_per_cell`` devices per cell), or by the cost model's loop when it sets
``program_pulses`` / ``verify_iterations`` (:func:`memxbar.crossbar.cost.tile_program_cost`).
"""

from __future__ import annotations

import dataclasses
import math
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import pandas as pd
import torch
from torch import Tensor, nn

from memxbar.crossbar.cost import (
    CostModel,
    accumulator_bits,
    add_energy,
    buffer_area,
    buffer_energy,
    input_register_bits,
    logic_area,
    mvm_cost,
    register_area,
    row_groups,
    tile_area,
    tile_program_cost,
)
from memxbar.errors import ConfigError, figure_path, plain_value
from memxbar.mapping.convert import ELEMENTWISE, analog_layers
from memxbar.mapping.layers import AnalogConv, AnalogLayer, AnalogMultiheadAttention

COMPONENTS = ("cells", "dac", "decoder", "mux", "write", "adc", "shift_add", "accumulate",
              "function", "buffer", "interconnect", "leakage")
ACTIVATIONS = (nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.PReLU, nn.Hardtanh)
POOLING = (nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d, nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d,
           nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d, nn.AdaptiveMaxPool3d,
           nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.AdaptiveAvgPool3d)
CHUNK = 8192  # input vectors costed at once (bounds memory of the DAC planes)


@dataclass
class CostReport:
    """Result of :func:`estimate_cost`.

    - ``energy_breakdown``: layers x components, J per inference.
    - ``area_breakdown``: layers (plus "global buffer" and "interconnect") x components, m^2.
    - ``adc_models``, ``rows_parallel``: the distinct ADC models and rows read in parallel
      of the layers' hardware (``TileConfig.adc.model``, ``TileConfig.rows_parallel``).
    - ``layers``: per layer: kind, inputs, outputs, tiles (of one copy), devices (physical
      memory devices of all its copies: cells x ``Device.devices_per_cell``), copies,
      ``input_density`` (fraction of row-cycle slots driven by a non-zero input code); per
      inference: MVMs, ADC conversions (of the converters in use, as the tiles perform them,
      ``TileConfig.conversions_per_vector``), MACs and ops; time of one MVM and latency (s),
      energy (J), area (m^2), programming energy (J) and time (s).
    - ``digital``: the model's weight layers left digital (indexed by layer: ``type``,
      ``macs`` per inference from the same forward run, NaN where the type's MACs are not
      known, ``status`` "digital, not costed"). They are in no other table: the energy, ops
      and TOPS/W cover the analog layers only.
    """

    energy_breakdown: pd.DataFrame
    area_breakdown: pd.DataFrame
    layers: pd.DataFrame
    cost_model: CostModel
    inferences: int
    adc_models: tuple[str, ...] = ("survey",)
    rows_parallel: tuple[int | None, ...] = (None,)
    digital: pd.DataFrame = dataclasses.field(default_factory=lambda: _digital_table({}, 1))

    @property
    def energy(self) -> float:
        """Energy per inference (J), the sum of the breakdown."""
        return float(self.energy_breakdown.to_numpy().sum())

    @property
    def latency(self) -> float:
        """Latency of one inference (s), layers in sequence."""
        return float(self.layers["latency_s"].sum())

    @property
    def throughput(self) -> float:
        """Pipelined inferences per second (the slowest layer sets the pace)."""
        return 1.0 / float(self.layers["latency_s"].max())

    @property
    def area(self) -> float:
        """Chip area (m^2), the sum of the area breakdown."""
        return float(self.area_breakdown.to_numpy().sum())

    @property
    def ops(self) -> float:
        """Operations per inference: 2 x MACs of the mapped layers."""
        return float(self.layers["ops"].sum())

    @property
    def program_energy(self) -> float:
        """Energy to program every cell of the model (J)."""
        return float(self.layers["program_energy_J"].sum())

    @property
    def program_time(self) -> float:
        """Time to program the model (s), layers one after the other."""
        return float(self.layers["program_time_s"].sum())

    def totals(self) -> dict[str, float]:
        """Headline figures: energy, latency, throughput, area, ops, TOPS, TOPS/W, TOPS/mm^2
        (from the latency and, "_pipelined", from the throughput), programming cost."""
        mm2 = self.area * 1e6
        tops = self.ops / self.latency / 1e12
        tops_p = self.ops * self.throughput / 1e12
        return {"energy_J": self.energy, "latency_s": self.latency,
                "throughput_per_s": self.throughput, "area_m2": self.area,
                "area_mm2": mm2, "ops": self.ops, "TOPS": tops, "TOPS_pipelined": tops_p,
                "TOPS_per_W": self.ops / self.energy / 1e12,
                "TOPS_per_mm2": tops / mm2, "TOPS_per_mm2_pipelined": tops_p / mm2,
                "program_energy_J": self.program_energy, "program_time_s": self.program_time}

    def summary(self) -> str:
        """Human-readable totals and tables."""
        t = self.totals()
        e_unit, e_scale = _unit(self.energy_breakdown.to_numpy().max(initial=0.0), "J")
        tot_unit, tot_scale = _unit(t["energy_J"], "J")
        p_unit, p_scale = _unit(t["program_energy_J"], "J")
        lat_unit, lat_scale = _unit(t["latency_s"], "s")
        models = ", ".join(f"'{m}'" for m in self.adc_models)
        rows = ", ".join(str(r or "all") for r in self.rows_parallel)
        lines = [
            f"Cost per inference ({self.inferences} example input(s), adc_model={models}, "
            f"node {self.cost_model.node * 1e9:g} nm, rows_parallel {rows}):",
            f"  energy       {t['energy_J'] / tot_scale:.4g} {tot_unit}  "
            f"({t['TOPS_per_W']:.4g} TOPS/W, ops = 2 x MACs = {t['ops']:.4g})",
            f"  latency      {t['latency_s'] / lat_scale:.4g} {lat_unit} (layers in sequence; "
            f"{t['TOPS']:.4g} TOPS)",
            f"  throughput   {t['throughput_per_s']:.4g} inferences/s pipelined "
            f"({t['TOPS_pipelined']:.4g} TOPS)",
            f"  area         {t['area_mm2']:.4g} mm^2 ({t['TOPS_per_mm2']:.4g} TOPS/mm^2, "
            f"pipelined {t['TOPS_per_mm2_pipelined']:.4g})",
            f"  programming  {t['program_energy_J'] / p_scale:.4g} {p_unit}, "
            f"{t['program_time_s'] * 1e3:.4g} ms",
            "",
            f"Energy per inference by layer and component ({e_unit}):",
            (self.energy_breakdown / e_scale).assign(
                total=lambda d: d.sum(axis=1)).to_string(float_format=lambda v: f"{v:.4g}"),
            "",
            "Area by layer and component (mm^2):",
            (self.area_breakdown * 1e6).assign(
                total=lambda d: d.sum(axis=1)).to_string(float_format=lambda v: f"{v:.4g}"),
            "",
            "Layers:",
            self.layers.to_string(float_format=lambda v: f"{v:.4g}"),
        ]
        if len(self.digital):
            macs = self.digital["macs"]
            unknown = int(macs.isna().sum())
            note = f", {unknown} of unknown MACs" if unknown else ""
            n = len(self.digital)
            lines[2:2] = [f"  not costed   {n} weight layer{'s' * (n > 1)} left digital "
                          f"({float(macs.sum()):.4g} MACs per inference{note}); energy, ops "
                          "and TOPS/W cover the analog layers only"]
            lines += ["", "Weight layers left digital (not costed):",
                      self.digital.to_string(float_format=lambda v: f"{v:.4g}")]
        return "\n".join(lines)


def _digital_table(digital: Mapping[str, tuple[str, float]], inferences: int) -> pd.DataFrame:
    """The ``digital`` table of a :class:`CostReport` from :attr:`LayerInputs.digital`."""
    df = pd.DataFrame([{"layer": n, "type": t, "macs": m / inferences,
                        "status": "digital, not costed"} for n, (t, m) in digital.items()],
                      columns=["layer", "type", "macs", "status"])
    return df.set_index("layer")


def _unit(value: float, base: str) -> tuple[str, float]:
    """A readable SI prefix for ``value``: (unit, scale)."""
    for prefix, scale in (("", 1.0), ("m", 1e-3), ("u", 1e-6), ("n", 1e-9), ("p", 1e-12)):
        if value >= scale:
            return prefix + base, scale
    return "f" + base, 1e-15


def _matrix_inputs(layer: AnalogLayer, x: Tensor) -> Tensor:
    """The (vectors, in_features) matrix the layer's arrays see for layer input ``x``."""
    if isinstance(layer, AnalogConv):
        return layer.patches(x)[0]
    return x.reshape(-1, layer.matrix_shape[1])


@dataclass
class LayerInputs:
    """What one forward run of a model fed each analog layer: ``inputs`` (layer name -> the
    input tensors of its calls), the largest input and output sizes (elements) of one call
    (``in_numel``, ``out_numel``: what a buffer holds), the number of ``inferences`` (the
    example's batch size), per layer the operations of the activation and pooling modules that
    ran after it (``function_ops``, whole run) and how many such modules there are
    (``function_units``), the input and output elements summed over all its calls
    (``in_total``, ``out_total``, whole run: what the interconnect moves; default the largest
    call), and the weight layers left digital (``digital``: name -> (type, MACs of the whole
    run; NaN where the type's MACs are not known))."""

    inputs: dict[str, list[Tensor]]
    in_numel: dict[str, int]
    out_numel: dict[str, int]
    inferences: int
    function_ops: dict[str, float] = dataclasses.field(default_factory=dict)
    function_units: dict[str, int] = dataclasses.field(default_factory=dict)
    in_total: dict[str, int] = dataclasses.field(default_factory=dict)
    out_total: dict[str, int] = dataclasses.field(default_factory=dict)
    digital: dict[str, tuple[str, float]] = dataclasses.field(default_factory=dict)


def _programmed_layers(analog_model: nn.Module, who: str) -> list[tuple[str, AnalogLayer]]:
    layers = list(analog_layers(analog_model))
    if not layers:
        raise ConfigError(f"{who}: the model has no analog layers; convert it with "
                         "memxbar.mapping.to_analog() first")
    for name, layer in layers:
        if not layer.programmed:
            raise ConfigError(f"{who}: layer {name!r} is not programmed; call "
                             "memxbar.mapping.program(model, generator=...) first")
    return layers


@torch.no_grad()
def capture_inputs(analog_model: nn.Module, example_input: Tensor) -> LayerInputs:
    """Run the programmed model once on ``example_input`` (a batch; its first dimension counts
    the inferences, or the batch dimension of the attention layers' queries where the model
    has any: dimension 1 unless ``batch_first``) in eval mode (the mode is restored) and
    capture every analog layer's input with forward hooks, and the MACs of the weight layers
    left digital (:func:`digital_weight_layers`). Activation and pooling modules are billed to
    the analog layer that ran last before them (those before any: the first); those that run
    after a digital weight layer are billed to nobody (not costed)."""
    if not isinstance(example_input, Tensor) or example_input.dim() < 1 or \
            example_input.shape[0] < 1:
        raise ConfigError("capture_inputs: example_input must be a tensor with a batch "
                         "dimension >= 1")
    layers = _programmed_layers(analog_model, "capture_inputs")
    seen: dict[str, list[Tensor]] = {name: [] for name, _ in layers}
    ins: dict[str, int] = dict.fromkeys(seen, 0)
    outs: dict[str, int] = dict.fromkeys(seen, 0)
    in_sum: dict[str, int] = dict.fromkeys(seen, 0)
    out_sum: dict[str, int] = dict.fromkeys(seen, 0)

    fops: dict[str, float] = dict.fromkeys(seen, 0.0)
    funits: dict[str, set[str]] = {name: set() for name in seen}
    # the analog layer that ran last (functions before it: the first); None after a digital one
    current: list[str | None] = [layers[0][0]]
    digital = digital_weight_layers(analog_model)
    dmacs: dict[str, float] = dict.fromkeys(digital, 0.0)

    def pre(name: str) -> Callable[[nn.Module, tuple[Any, ...]], None]:
        def hook(module: nn.Module, args: tuple[Any, ...]) -> None:
            _check_batched(name, module, args[0])
            seen[name].append(args[0].detach())
            ins[name] = max(ins[name], args[0].numel())
            in_sum[name] += args[0].numel()
            current[0] = name
        return hook

    def function(name: str) -> Callable[[nn.Module, tuple[Any, ...], Tensor], None]:
        def hook(module: nn.Module, args: tuple[Any, ...], out: Tensor) -> None:
            n_in = args[0].numel()
            ops = n_in if isinstance(module, ACTIVATIONS) else max(n_in - out.numel(), 0)
            last = current[0]
            if last is not None:
                fops[last] += float(ops)
                funits[last].add(name)
        return hook

    def post(name: str) -> Callable[[nn.Module, tuple[Any, ...], Tensor], None]:
        def hook(module: nn.Module, args: tuple[Any, ...], out: Tensor) -> None:
            outs[name] = max(outs[name], out.numel())
            out_sum[name] += out.numel()
        return hook

    def kept_digital(name: str
                     ) -> Callable[[nn.Module, tuple[Any, ...], dict[str, Any], Any], None]:
        def hook(module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any],
                 out: Any) -> None:
            dmacs[name] += _macs(module, args, kwargs, out)
            current[0] = None
        return hook

    batches: dict[str, int] = {}  # attention layer -> the batch size of its query

    def attention(name: str) -> Callable[[nn.Module, tuple[Any, ...], dict[str, Any]], None]:
        def hook(module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
            query = args[0] if args else kwargs.get("query")
            _check_batched(name, module, query)
            if isinstance(query, Tensor):
                batches[name] = int(query.shape[0 if module.batch_first else 1])
        return hook

    handles = []
    for name, layer in layers:
        handles.append(layer.register_forward_pre_hook(pre(name)))
        handles.append(layer.register_forward_hook(post(name)))
    for name, module in analog_model.named_modules():
        if isinstance(module, ACTIVATIONS + POOLING):
            handles.append(module.register_forward_hook(function(name)))
        elif isinstance(module, AnalogMultiheadAttention):  # its projections see (L, E) rows
            handles.append(module.register_forward_pre_hook(attention(name), with_kwargs=True))
        if name in digital:
            handles.append(module.register_forward_hook(kept_digital(name), with_kwargs=True))
    was_training = analog_model.training
    try:
        analog_model.eval()
        analog_model(example_input)
    finally:
        for h in handles:
            h.remove()
        analog_model.train(was_training)
    for name in seen:
        if not seen[name]:
            raise ConfigError(f"capture_inputs: layer {name!r} was not called by the model's "
                             "forward pass on example_input")
    inferences = int(example_input.shape[0])
    if batches:  # a sequence-first attention layer holds its batch in dimension 1
        if len(set(batches.values())) > 1:
            raise ConfigError(f"capture_inputs: the attention layers see batches of "
                              f"{batches}; allowed: one batch size (the inferences) for all")
        inferences = next(iter(batches.values()))
    return LayerInputs(seen, ins, outs, inferences, fops,
                       {name: len(units) for name, units in funits.items()},
                       in_total=in_sum, out_total=out_sum,
                       digital={n: (t, dmacs[n]) for n, t in digital.items()})


def digital_weight_layers(model: nn.Module) -> dict[str, str]:
    """The weight layers of ``model`` left digital (name -> type), as the conversion report
    (:func:`memxbar.mapping.conversion_report`) counts modules with weights: every module with
    parameters of its own that is not analog, except elementwise ones (normalisation, PReLU:
    no matrix-vector product), the digital parts of an analog attention module and the parts
    of a digital attention module (counted with it)."""
    out: dict[str, str] = {}
    inside: list[str] = []  # digital nn.MultiheadAttention modules: their parts count with them
    for name, m in model.named_modules():
        if any(name.startswith(p + ".") for p in inside):
            continue
        if isinstance(m, (AnalogLayer, AnalogMultiheadAttention, *ELEMENTWISE)):
            continue
        if any(True for _ in m.parameters(recurse=False)):
            out[name] = type(m).__name__
            if isinstance(m, nn.MultiheadAttention):
                inside.append(name)
    return out


def _macs(module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any], out: Any) -> float:
    """MACs of one call of a digital weight layer: a linear or convolution layer, or the four
    projections of a multi-head attention (query, key, value in; output out); NaN for other
    types."""
    if isinstance(module, nn.Linear) and isinstance(out, Tensor):
        return float(out.numel() * module.in_features)
    if isinstance(module, nn.modules.conv._ConvNd) and isinstance(out, Tensor):
        k = math.prod(module.kernel_size)
        if module.transposed:
            return float(args[0].numel() * module.out_channels * k / module.groups)
        return float(out.numel() * module.in_channels * k / module.groups)
    if isinstance(module, nn.MultiheadAttention):
        qkv = [*args[:3], *(kwargs.get(n) for n in ("query", "key", "value")[len(args):])]
        if len(qkv) == 3 and all(isinstance(t, Tensor) for t in qkv):
            q, key, value = qkv
            return float((2 * q.numel() + key.numel() + value.numel()) * module.embed_dim)
    return math.nan


def _check_batched(name: str, layer: nn.Module, x: object) -> None:
    """Refuse an unbatched layer input (the example input then counts no inferences)."""
    if not isinstance(x, Tensor):
        return
    if isinstance(layer, AnalogConv) and x.dim() == layer.nd + 1:
        want = f"(batch, {layer.in_channels}, {layer.nd} spatial dims)"
    elif isinstance(layer, AnalogMultiheadAttention) and x.dim() == 2:  # torch: (L, E)
        want = ("(batch, sequence, embedding)" if layer.batch_first else
                "(sequence, batch, embedding)")
    elif isinstance(layer, AnalogLayer) and not isinstance(layer, AnalogConv) and x.dim() < 2:
        want = f"(batch, ..., {layer.matrix_shape[1]})"
    else:
        return
    raise ConfigError(f"capture_inputs: layer {name!r} got an unbatched input of shape "
                      f"{tuple(x.shape)}; allowed: example_input a batch (its first dimension "
                      f"counts the inferences) that gives the layer {want}, e.g. "
                      "example_input.unsqueeze(0)")


def _copies(duplication: int | Mapping[str, int] | None,
            layers: list[tuple[str, AnalogLayer]]) -> dict[str, int]:
    """Copies of every layer: ``duplication`` as an int applies to every convolution, as a
    mapping to the named layers; the rest are mapped once."""
    def check(what: str, k: object) -> int:
        k = plain_value(k)
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ConfigError(f"estimate_cost: duplication{what} = {k!r} is not allowed; "
                             "allowed: an integer >= 1")
        return k

    names = [n for n, _ in layers]
    if duplication is None:
        return dict.fromkeys(names, 1)
    if isinstance(duplication, Mapping):
        unknown = sorted(set(duplication) - set(names))
        if unknown:
            raise ConfigError(f"estimate_cost: duplication names unknown layers {unknown}; "
                             f"allowed: {names}")
        return {n: check(f"[{n!r}]", duplication.get(n, 1)) for n in names}
    k = check("", duplication)
    return {n: k if isinstance(layer, AnalogConv) else 1 for n, layer in layers}


def htree_length(side: float, nodes: int) -> float:
    """Total wire length (m) of an H-tree reaching ``nodes`` leaves on a square of ``side`` m:
    level k (1 .. ceil(log2 nodes)) has 2^k segments of ``side / 2^(ceil(k/2)+1)``."""
    levels = math.ceil(math.log2(nodes)) if nodes > 1 else 0
    return sum(2 ** k * side / 2 ** (math.ceil(k / 2) + 1) for k in range(1, levels + 1))


def interconnect_energy(bits: float, side: float, cm: CostModel) -> float:
    """Energy (J) of moving ``bits`` bits root-to-leaf over an H-tree on a chip of ``side`` m:
    ``bits * bus_activity / 2 * wire_capacitance * side * vdd^2``."""
    return bits * cm.bus_activity / 2.0 * cm.wire_capacitance * side * cm.vdd ** 2


@torch.no_grad()
def estimate_cost(analog_model: nn.Module, example_input: Tensor | LayerInputs,
                  cost_model: CostModel | None = None, *,
                  duplication: int | Mapping[str, int] | None = None) -> CostReport:
    """Energy, latency and area of ``analog_model`` (converted and programmed) per inference.

    ``example_input``: a batch (its batch dimension counts the inferences), run once through
    the model (see :func:`capture_inputs`), or the :class:`LayerInputs` of an earlier capture
    (to cost the same run under several cost models). Every analog layer is costed tile by tile
    on exactly its captured inputs. ``duplication``: weight copies (NeuroSim's pipeline
    speed-up), an int for every convolution or a mapping of layer names to copies; default
    none. Returns a :class:`CostReport`."""
    cm = cost_model or CostModel()
    if not isinstance(cm, CostModel):
        raise ConfigError(f"estimate_cost: cost_model = {cm!r} is not a CostModel")
    cap = example_input if isinstance(example_input, LayerInputs) else capture_inputs(
        analog_model, example_input)
    layers = _programmed_layers(analog_model, "estimate_cost")
    if set(cap.inputs) != {name for name, _ in layers}:
        raise ConfigError("estimate_cost: the captured inputs belong to another model (layers "
                         f"{sorted(cap.inputs)})")
    copies = _copies(duplication, layers)
    n_inf = cap.inferences
    energy_rows, area_rows, info_rows = {}, {}, []
    arrays = 0
    for name, layer in layers:
        k = copies[name]
        e, a, info = _layer_cost(layer, cap.inputs[name], cm)
        e["function"] = cap.function_ops.get(name, 0.0) * add_energy(cm.activation_bits, cm)
        energy_rows[name] = {c: v / n_inf for c, v in e.items()}
        a = {c: k * v for c, v in a.items()}
        lanes = max(1, cm.bus_width // cm.activation_bits)
        a["function"] = cap.function_units.get(name, 0) * lanes * logic_area(
            cm.activation_bits, cm)
        a["buffer"] += buffer_area(math.ceil(cap.in_numel[name] / n_inf) * cm.activation_bits,
                                   cm)
        area_rows[name] = a
        info["copies"] = k
        info["mvms"] = info.pop("vectors") / n_inf
        info["conversions"] /= n_inf
        info["latency_s"] = math.ceil(info["mvms"] / k) * info["t_mvm_s"]
        info["macs"] = info["mvms"] * info["inputs"] * info["outputs"]
        info["ops"] = 2.0 * info["macs"]
        info["program_energy_J"] *= k
        info["program_time_s"] *= k
        info["devices"] *= k
        arrays += k * info.pop("arrays")
        info_rows.append({"layer": name, **info})
    buf_bits = max((cap.in_numel[n] + cap.out_numel[n]) / n_inf for n, _ in layers) \
        * cm.activation_bits
    area_rows["global buffer"] = {"buffer": buffer_area(math.ceil(buf_bits), cm)}
    # chip floorplan: a square of the tiles and buffers, an H-tree to one leaf per node
    core = sum(sum(a.values()) for a in area_rows.values())
    side = math.sqrt(core)
    nodes = -(-arrays // cm.arrays_per_node)
    area_rows["interconnect"] = {"interconnect": cm.bus_width * cm.wire_pitch * cm.node
                                 * htree_length(side, nodes)}
    for name, _ in layers:  # every call's inputs and outputs are moved
        moved = (cap.in_total.get(name, cap.in_numel[name])
                 + cap.out_total.get(name, cap.out_numel[name]))
        energy_rows[name]["interconnect"] = interconnect_energy(
            moved / n_inf * cm.activation_bits, side, cm)
    # leakage over one pipeline period, shared by the layers' areas
    chip = sum(sum(a.values()) for a in area_rows.values())
    layer_area = {n: sum(area_rows[n].values()) for n, _ in layers}
    period = max(r["latency_s"] for r in info_rows)
    for name, _ in layers:
        energy_rows[name]["leakage"] = cm.leakage_density * chip * period \
            * layer_area[name] / sum(layer_area.values())
    for r in info_rows:
        r["energy_J"] = sum(energy_rows[r["layer"]].values())
        r["area_m2"] = layer_area[r["layer"]]
    energy = pd.DataFrame.from_dict(energy_rows, orient="index").reindex(
        columns=list(COMPONENTS), fill_value=0.0).fillna(0.0)
    area = pd.DataFrame.from_dict(area_rows, orient="index").reindex(
        columns=list(COMPONENTS), fill_value=0.0).fillna(0.0)
    energy.index.name = area.index.name = "layer"
    order = ["layer", "kind", "inputs", "outputs", "tiles", "devices", "copies", "input_density",
             "mvms", "conversions", "macs", "ops", "t_mvm_s", "latency_s", "energy_J", "area_m2",
             "program_energy_J", "program_time_s"]
    info_df = pd.DataFrame(info_rows)[order].set_index("layer")
    hws = [tiled.hardware for _, layer in layers if (tiled := layer.tiled) is not None]
    return CostReport(energy_breakdown=energy, area_breakdown=area, layers=info_df,
                      cost_model=cm, inferences=n_inf,
                      adc_models=tuple(dict.fromkeys(hw.adc.model for hw in hws)),
                      rows_parallel=tuple(dict.fromkeys(hw.rows_parallel for hw in hws)),
                      digital=_digital_table(cap.digital, n_inf))


def _layer_cost(layer: AnalogLayer, inputs: list[Tensor], cm: CostModel
                ) -> tuple[dict[str, float], dict[str, float], dict]:
    """Energy (J, all captured inputs), area (m^2, one copy) and bookkeeping of one analog
    layer."""
    tiled = layer.tiled
    assert tiled is not None
    hw = tiled.hardware
    n_rb, n_cb = tiled.n_row_blocks, tiled.n_col_blocks
    n_g = tiled.groups  # tile stack (groups,) x row blocks x column blocks
    used = torch.tensor([[min(hw.rows, tiled.in_features - i * hw.rows)] for i in range(n_rb)])
    wc = hw.weight_cols  # weight columns holding weights in each column block
    used_cols = torch.tensor([min(wc, tiled.group_out - j * wc) for j in range(n_cb)])
    energy = dict.fromkeys(COMPONENTS, 0.0)
    vectors, t_mvm, active, conversions = 0, 0.0, 0.0, 0.0
    for x in inputs:
        X = _matrix_inputs(layer, x)
        for start in range(0, X.shape[0], CHUNK):
            xs = X[start:start + CHUNK]
            xb = tiled.tile_inputs(xs)[0]
            c = mvm_cost(tiled.tile, xb, cm, used_rows=used, used_cols=used_cols, config=hw)
            for k, v in c.energy.items():
                energy[k] += v
            t_mvm = max(t_mvm, c.latency)
            active += c.active_rows
            conversions += c.conversions
            vectors += xs.shape[0]
    groups = row_groups(hw)
    acc = accumulator_bits(hw, cm, groups) + math.ceil(math.log2(n_rb))
    out_f = tiled.out_features
    energy["accumulate"] = vectors * out_f * (n_rb - 1) * add_energy(acc, cm)
    energy["buffer"] += buffer_energy(vectors * out_f * cm.activation_bits, cm)
    tiles = math.prod(tiled.stack)
    area = {k: tiles * v for k, v in tile_area(hw, cm, input_register=False).items()}
    # the tiles of a row block share its input vector, held in one register
    area["buffer"] += n_g * n_rb * register_area(input_register_bits(hw, cm), cm)
    area["accumulate"] = (out_f * logic_area(acc, cm)) if n_rb > 1 else 0.0
    prog = tile_program_cost(tiled.tile, cm)
    devices = tiles * hw.n_arrays * hw.rows * hw.cols * hw.device.devices_per_cell
    info = {"kind": type(layer).__name__, "inputs": tiled.in_features, "outputs": out_f,
            "tiles": tiles, "devices": devices, "arrays": tiles * hw.n_arrays, "vectors": vectors,
            "conversions": conversions,
            "t_mvm_s": t_mvm,
            "input_density": active / max(1, n_g * n_cb * tiled.in_features * vectors
                                          * hw.dac.n_cycles),
            "program_energy_J": prog.energy, "program_time_s": prog.time}
    return energy, area, info


def plot_breakdown(report: CostReport | Mapping[str, CostReport], path: str | Path) -> None:
    """Stacked bars per layer of the energy per inference and of the area, by component,
    written to ``path`` (.png, .svg or .pdf; the format from the suffix). ``report`` may be a
    mapping of names to reports (e.g. one per device technology): their layers are shown side
    by side, labelled with the name. A middle panel shows each layer's energy shares."""
    path = figure_path(path, "plot_breakdown: path")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    reports = {"": report} if isinstance(report, CostReport) else dict(report)
    if not reports or not all(isinstance(r, CostReport) for r in reports.values()):
        raise ConfigError("plot_breakdown: give a CostReport or a non-empty mapping of names to "
                         "CostReports")

    def joined(attr: str) -> pd.DataFrame:
        parts = []
        for name, r in reports.items():
            df = getattr(r, attr).copy()
            df.index = [f"{name}\n{i}" if name else str(i) for i in df.index]
            parts.append(df)
        return pd.concat(parts)

    e, a = joined("energy_breakdown"), joined("area_breakdown")
    e_unit, e_scale = _unit(float(e.sum(axis=1).max()), "J")
    share = e.div(e.sum(axis=1).where(e.sum(axis=1) > 0, 1.0), axis=0) * 100.0
    colors = dict(zip(COMPONENTS, [*matplotlib.color_sequences["tab10"],
                                   *matplotlib.color_sequences["Dark2"]], strict=False))
    n = max(len(e), len(a))
    fig, axes = plt.subplots(1, 3, figsize=(max(12.0, 1.2 * n + 7), 5.2))
    for ax, df, scale, ylabel, title in (
            (axes[0], e, e_scale, f"energy per inference ({e_unit})", "Energy"),
            (axes[1], share, 1.0, "share of the layer's energy (%)", "Energy share"),
            (axes[2], a, 1e-6, "area (mm$^2$)", "Area")):
        bottom = [0.0] * len(df)
        x = range(len(df))
        for comp in COMPONENTS:
            vals = (df[comp] / scale).tolist()
            if any(v > 0 for v in vals):
                ax.bar(x, vals, bottom=bottom, label=comp, color=colors[comp])
                bottom = [b + v for b, v in zip(bottom, vals, strict=True)]
        labels = [str(i) for i in df.index]
        wide = max((len(part) for lab in labels for part in lab.split("\n")), default=0) > 10
        ax.set_xticks(list(x), labels, rotation=45 if wide else 0,
                      ha="right" if wide else "center", fontsize="small")
        ax.set_ylabel(ylabel)
        ax.set_xlabel("layer")
        ax.set_title(title)
        ax.grid(axis="y", alpha=0.3)
    def headline(name: str, t: dict[str, float]) -> str:
        eu, es = _unit(t["energy_J"], "J")
        lu, ls = _unit(t["latency_s"], "s")
        lu = lu.replace("u", r"$\mu$")
        return (f"{name + ': ' if name else ''}{t['energy_J'] / es:.3g} {eu}/inference, "
                f"{t['TOPS_per_W']:.3g} TOPS/W, {t['area_mm2']:.3g} mm$^2$, "
                f"latency {t['latency_s'] / ls:.3g} {lu}")

    fig.suptitle("\n".join(headline(k, r.totals()) for k, r in reports.items()),
                 fontsize="medium")
    handles, labels = axes[0].get_legend_handles_labels()
    h2, l2 = axes[2].get_legend_handles_labels()
    for h, lab in zip(h2, l2, strict=True):
        if lab not in labels:
            handles.append(h)
            labels.append(lab)
    e_tot, a_tot = float(e.to_numpy().sum()), float(a.to_numpy().sum())
    shares = [f"{lab}: {100 * e[lab].sum() / e_tot if e_tot else 0:.1f} % E, "
              f"{100 * a[lab].sum() / a_tot if a_tot else 0:.1f} % A" for lab in labels]
    fig.legend(handles, shares, loc="center right", title="component (share of all bars)",
               fontsize="small")
    fig.tight_layout(rect=(0, 0, 0.82, 0.92))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=150)
    plt.close(fig)


def print_report(report: CostReport, file: TextIO | None = None) -> None:
    """Print :meth:`CostReport.summary` (to stdout by default)."""
    print(report.summary(), file=file or sys.stdout)


def cost(analog_model: nn.Module, example_input: Tensor, cost_model: CostModel | None = None,
         *, plot: str | Path | None = None, file: TextIO | None = None,
         duplication: int | Mapping[str, int] | None = None) -> CostReport:
    """Estimate, print and (``plot``: a .png, .svg or .pdf path) plot the cost of
    ``analog_model`` on ``example_input``; the entry point of the ``memxbar cost`` command.
    Returns the report."""
    if plot is not None:
        plot = figure_path(plot, "cost: plot")
    report = estimate_cost(analog_model, example_input, cost_model, duplication=duplication)
    print_report(report, file)
    if plot is not None:
        plot_breakdown(report, plot)
    return report
