"""The analog layer protocol: one weight matrix on a :class:`TiledMatrix`.

An analog layer keeps a digital master copy of its weights (``weight``, ``bias`` parameters, used
for training and for reprogramming) and, once programmed, a :class:`TiledMatrix` submodule
(``tiled``) holding the device states of its arrays as buffers, so ``.to()``, ``.double()``,
``state_dict()`` and ``load_state_dict()`` carry them. The forward pass runs through the
simulated hardware; biases are added digitally. Gradients (for chip-in-the-loop training) flow
as for ``y = x @ W_eff.T``: the input gradient uses the transposed MVM through the same arrays
when ``backward_analog`` is set, otherwise the effective weights, and the weight gradient is
``grad_y.T @ x``.

The life cycle every analog layer offers:

- ``program(generator=)``: write the current weights onto the arrays (t = 0);
- ``drift(t, generator=)``: read the arrays ``t`` s after programming;
- ``calibration(phase)``: a context manager; every forward call inside it sets (widens, after
  the first call) the layer's ranges from the inputs it sees — ``phase = "inputs"``: the
  calibrated input range (for ``input_scaling = "calibrated"``) and then the ADC ranges;
  ``"adc"``: the ADC ranges only, the input range kept. :func:`memxbar.mapping.calibrate`
  drives it over a whole model.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Literal

import torch
from torch import Tensor, nn

from memxbar.crossbar.tile import TileConfig
from memxbar.errors import ConfigError
from memxbar.mapping.config import MappingConfig
from memxbar.mapping.tiler import TiledMatrix, check_allocation

CalibrationPhase = Literal["inputs", "adc"]
PHASES = ("inputs", "adc")


def check_generator(owner: str, generator: object) -> None:
    """Refuse a ``generator`` that is neither a ``torch.Generator`` nor None."""
    if generator is not None and not isinstance(generator, torch.Generator):
        raise ConfigError(f"{owner}: generator must be a torch.Generator or None; got "
                         f"{type(generator).__name__}")


class _HardwareMatmul(torch.autograd.Function):
    """``y = hardware(x)`` with the gradients of ``x @ W_eff.T`` (per group)."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, weight: Tensor, layer: AnalogLayer,
                input_amax: Tensor | None = None) -> Tensor:
        ctx.layer = layer
        ctx.save_for_backward(x)
        tiled = layer.tiled
        assert tiled is not None  # the hardware path runs programmed layers only
        return tiled.forward(x, generator=layer.device_generator(x), input_amax=input_amax)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, Tensor | None, None, None]:
        (x,) = ctx.saved_tensors
        layer: AnalogLayer = ctx.layer
        tiled = layer.tiled
        assert tiled is not None
        G, B = tiled.groups, grad.shape[0]
        gx = gw = None
        if ctx.needs_input_grad[0]:
            if layer.backward_analog:
                gx = tiled.backward(grad, generator=layer.device_generator(grad))
            elif G == 1:
                gx = grad @ tiled.effective_weight().to(grad.dtype)
            else:
                w = tiled.effective_weight().to(grad.dtype).reshape(G, tiled.group_out, -1)
                gx = torch.einsum("bgo,goi->bgi", grad.reshape(B, G, -1), w).reshape(B, -1)
        if ctx.needs_input_grad[1]:
            if G == 1:
                gw = grad.t() @ x
            else:
                gw = torch.einsum("bgo,bgi->goi", grad.reshape(B, G, -1),
                                  x.reshape(B, G, -1)).reshape(tiled.out_features, -1)
        return gx, gw, None, None


class AnalogLayer(nn.Module):
    """Shared life cycle of analog layers: program, drift, calibration, state_dict.

    Subclasses set ``weight`` (and ``bias``), call :meth:`_init_hardware` with the matrix
    shape the arrays hold, and run their matrix products through :meth:`_hardware_mvm`.
    """

    weight: nn.Parameter
    bias: nn.Parameter | None
    tiled: TiledMatrix | None

    def _init_hardware(self, hardware: TileConfig, mapping: MappingConfig | None,
                       in_features: int, out_features: int, groups: int = 1) -> None:
        if not isinstance(hardware, TileConfig):
            raise ConfigError(f"{type(self).__name__}: hardware = {hardware!r} is not a "
                             "TileConfig")
        if mapping is not None and not isinstance(mapping, MappingConfig):
            raise ConfigError(f"{type(self).__name__}: mapping = {mapping!r} is not a "
                             "MappingConfig")
        self.hardware = hardware
        self.mapping = mapping or MappingConfig()
        self.matrix_shape = (out_features, in_features)  # (out, in per group)
        self.groups = groups
        self.tiled = None
        self.generator: torch.Generator | None = None
        self.backward_analog = False
        self._phase: CalibrationPhase | None = None
        self._phase_batches = 0

    @staticmethod
    def _allocate(owner: str, *shape: int) -> Tensor:
        """An uninitialised float32 weight tensor, refused first when it cannot fit."""
        for s in shape:
            if isinstance(s, bool) or not isinstance(s, int) or s < 1:
                raise ConfigError(f"{owner}: the sizes {shape} are not allowed; allowed: "
                                 "integers >= 1")
        n = 1
        for s in shape:
            n *= s
        check_allocation(owner, f"a weight of {shape}", 4 * n)
        return torch.empty(shape)

    @torch.no_grad()
    def _copy_from(self, layer: nn.Linear | nn.Conv1d | nn.Conv2d | nn.Conv3d) -> None:
        """Take ``layer``'s weight and bias, and its torch device and dtype (this layer was
        built with a bias when ``layer`` has one), and which of them are frozen."""
        self.weight.copy_(layer.weight)
        if layer.bias is not None:
            assert self.bias is not None
            self.bias.copy_(layer.bias)
            self.bias.requires_grad_(layer.bias.requires_grad)
        self.weight.requires_grad_(layer.weight.requires_grad)
        self.to(layer.weight.device, layer.weight.dtype)

    def _matrix(self) -> Tensor:
        """The weight as the (out, in per group) matrix the arrays hold."""
        return self.weight.reshape(self.matrix_shape)

    @property
    def programmed(self) -> bool:
        return self.tiled is not None and self.tiled.programmed

    def _new_tiled(self) -> TiledMatrix:
        out_f, in_f = self.matrix_shape
        return TiledMatrix(self.hardware, in_f, out_f, self.mapping, groups=self.groups)

    def device_generator(self, like: Tensor) -> torch.Generator:
        """The layer's generator on ``like``'s torch device: after ``.to()`` onto another
        torch device a generator there is derived from it (one draw), so the noise stays
        seeded; without one (a layer loaded from a state_dict), a private one, seed 0."""
        g = self.generator
        if g is None:  # a private generator (seed 0), never torch's global one
            g = self.generator = torch.Generator(device=like.device).manual_seed(0)
        if g.device.type != like.device.type:
            seed = int(torch.randint(0, 2**62, (1,), generator=g, device=g.device))
            g = torch.Generator(device=like.device).manual_seed(seed)
            self.generator = g
        return g

    @torch.no_grad()
    def program(self, *, generator: torch.Generator | None = None) -> None:
        """Write the current ``weight`` onto the arrays (t = 0). ``generator`` (default: a
        private one, seed 0, never torch's global one) is kept for the noise of later reads
        and MVMs."""
        check_generator(f"{type(self).__name__}.program", generator)
        w = self._matrix().detach()
        if self.tiled is None:
            self.tiled = self._new_tiled()
        self.generator = generator
        self.tiled.program(w, generator=self.device_generator(w))

    @torch.no_grad()
    def drift(self, t: float, *, generator: torch.Generator | None = None) -> None:
        """Read the arrays ``t`` seconds after programming (drift, read noise, compensation)."""
        tiled = self._require("drift")
        check_generator(f"{type(self).__name__}.drift", generator)
        if generator is not None:
            self.generator = generator
        tiled.set_time(t, generator=self.device_generator(self.weight))

    def _require(self, op: str) -> TiledMatrix:
        if self.tiled is None or not self.tiled.programmed:
            raise ConfigError(f"{type(self).__name__}.{op}: the layer is not programmed; call "
                             "memxbar.mapping.program(model, generator=...) first")
        return self.tiled

    # ----------------------------------------------------------------- calibration
    @property
    def calibrating(self) -> CalibrationPhase | None:
        """The calibration phase in progress (see :meth:`calibration`), or None."""
        return self._phase

    @contextmanager
    def calibration(self, phase: CalibrationPhase = "inputs") -> Iterator[None]:
        """Within the block, every forward call sets this layer's ranges from its inputs
        (the first call replaces them, later ones widen them): ``"inputs"``: the calibrated
        input range ("calibrated" input scaling) and the ADC ranges; ``"adc"``: the ADC
        ranges only. The layer must be programmed."""
        if phase not in PHASES:
            raise ConfigError(f"{type(self).__name__}.calibration: phase = {phase!r} is not "
                             f"allowed; allowed: {', '.join(PHASES)}")
        self._require("calibration")
        if self._phase is not None:
            raise ConfigError(f"{type(self).__name__}.calibration: a calibration is already in "
                             "progress")
        self._phase, self._phase_batches = phase, 0
        try:
            yield
        finally:
            self._phase = None

    def _check_input(self, x: Tensor) -> None:
        if not isinstance(x, Tensor):
            raise ConfigError(f"{type(self).__name__}: input must be a torch.Tensor, got "
                             f"{type(x).__name__}")
        if x.dtype != self.weight.dtype:
            raise ConfigError(f"{type(self).__name__}: input dtype {x.dtype} differs from the "
                             f"layer's {self.weight.dtype}; inputs are not cast: convert the "
                             f"input (x.to({self.weight.dtype})) or the model (model.to(dtype))")

    def _hardware_mvm(self, x: Tensor, input_amax: Tensor | None = None) -> Tensor:
        """``x`` (B, groups * in) through the arrays -> (B, out); calibrates first inside
        :meth:`calibration`."""
        tiled = self._require("forward")
        if self._phase is not None:
            with torch.no_grad():
                tiled.calibrate_adc(x.detach(), accumulate=self._phase_batches > 0,
                                    input_range=self._phase == "inputs")
            self._phase_batches += 1
        if x.shape[0] == 0 and torch.is_grad_enabled():  # empty: an empty output, in the graph
            return x.new_zeros(0, tiled.out_features) + x.sum() * self._matrix().sum()
        if not torch.is_grad_enabled():  # inference: no autograd node to record
            return tiled.forward(x, generator=self.device_generator(x), input_amax=input_amax)
        if self.backward_analog and self.groups > 1:
            raise ConfigError(f"{type(self).__name__}: backward_analog is not supported with "
                             f"groups = {self.groups}; allowed: groups = 1")
        return _HardwareMatmul.apply(x, self._matrix(), self, input_amax)

    # ----------------------------------------------------------------- state_dict
    def _load_from_state_dict(self, state_dict: dict, prefix: str, local_metadata: dict,
                              strict: bool, missing_keys: list, unexpected_keys: list,
                              error_msgs: list) -> None:
        """A saved programmed layer loads into an unprogrammed one: its tiled matrix is made
        here and filled by its own loader. Missing keys are left to ``load_state_dict`` (torch
        passes ``strict=True`` here whatever its caller's flag): ``strict=True`` refuses them
        (torch's RuntimeError names them), ``strict=False`` returns them in ``missing_keys``."""
        for name, p in self.named_parameters(recurse=False):
            v = state_dict.get(prefix + name)
            if isinstance(v, torch.Tensor) and v.shape != p.shape:
                raise ConfigError(f"load_state_dict: {prefix}{name} has shape {tuple(v.shape)}; "
                                  f"this {type(self).__name__} expects {tuple(p.shape)}")
            if isinstance(v, torch.Tensor) and not bool(torch.isfinite(v).all()):
                raise ConfigError(f"load_state_dict: {prefix}{name} has non-finite values; "
                                  "allowed: finite numbers")
        if self.tiled is None and any(k.startswith(prefix + "tiled.") for k in state_dict):
            self.tiled = self._new_tiled().to(self.weight.device, self.weight.dtype)
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys,
                                      unexpected_keys, error_msgs)

    def extra_repr(self) -> str:
        hw = self.hardware
        dev = type(hw.device).__name__
        state = "programmed" if self.programmed else "not programmed"
        return f"tiles {hw.rows}x{hw.cols}, {dev}, {hw.encoding}, {state}"


def analog_layers(model: nn.Module) -> Iterator[tuple[str, AnalogLayer]]:
    """(qualified name, layer) of every analog layer, in module order (a layer used twice is
    listed once)."""
    if not isinstance(model, nn.Module):
        raise ConfigError(f"the model is a {type(model).__name__}, which is not allowed; "
                          "allowed: a torch.nn.Module")
    for name, m in model.named_modules():
        if isinstance(m, AnalogLayer):
            yield name, m
