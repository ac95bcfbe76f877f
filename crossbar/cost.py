"""Energy, latency and area of crossbar tiles, per component, and of programming them.

One forward MVM of a tile (see :mod:`memxbar.crossbar.tile`) is costed from what actually
happens in it, not from averages:

- ``cells``: ohmic read power of every cell while it conducts, from the tile's conductances
  (device read means at the tile's read time, in series with the cell's access transistor,
  ``Device.effective_g``) and the DAC planes of the real inputs:
  ``E = t_sense * V_read^2 * sum_cycles sum_rows (code * volt)^2 * G_row``, where ``G_row`` is
  the sum of the conductances of a row over the cells that hold weights (:func:`weight_cells`:
  the used rows and the physical columns of the used weight columns, both devices of a
  differential pair, every slice and array, the offset reference column included; padding
  cells are not read: their rows are not driven and their columns float, so the figure is the
  same whether the tile simulates its used part or the whole array) and ``t_sense`` is set by
  ``CostModel.sensing`` (below). Wire (IR-drop) losses are neglected and a non-ohmic cell is
  treated with its low-field conductance.
- ``dac``: one row-driver event per non-zero input code and read cycle (event-driven: a zero
  input costs nothing, so activation sparsity shows in the energy).
- ``adc``: one conversion per used converter (a column holding weights, its bit slices and the
  offset reference column; differential pairs are subtracted before the ADC), read cycle and
  row group, counted by ``TileConfig.conversions_per_vector`` as the tile performs them; energy
  per conversion from the hardware's ADC (:class:`memxbar.crossbar.periphery.ADC`, its
  ``model``: the measured ADC survey, Walden figure of merit ``E = FOM * 2^bits``, or
  NeuroSim's SAR-ADC fit; see :mod:`memxbar.crossbar.periphery.adc_models`).
- ``decoder``: the row periphery: one row-decoder gate, input register and switch-matrix
  transmission gate switching per driven row and read cycle (``decoder_transistors`` minimum
  transistors, each ``transistor_energy``), event-driven like the DAC.
- ``mux``: the column periphery: one multiplexer switch per conversion and the bit line of every
  physical column charged to ``V_read`` once per read cycle and row group
  (``wire_capacitance * rows * cell pitch * V_read^2``, as NeuroSim's array energy; the cell
  pitch is the square root of the cell area).
- ``shift_add``: one accumulator addition per conversion (recombining cycles, slices, groups).
- ``buffer``: the tile's input activations read from the activation buffer (SRAM or a
  register file, ``CostModel.buffer_type``).

Partial row activation: ``TileConfig.rows_parallel`` rows are read per conversion (NeuroSim's
"rows read in parallel"); the rows holding weights are read in ``ceil(rows / rows_parallel)``
groups, which multiplies ADC conversions, shift-adds and read cycles, not the cell energy.
The hardware (``TileConfig``: its ADC, DAC and ``rows_parallel``) is what the tile simulates;
:class:`CostModel` holds only technology-node and architecture parameters.

Sensing (``CostModel.sensing``), two read-out architectures:

- "sample_hold" (default): every column integrates its current during the device's read pulse
  (``t_sense = read_time``) onto a sample-and-hold, then the shared ADC converts the held
  columns one after the other. MVM latency per read cycle and row group:
  ``read_time + conversions_per_adc * t_conv``.
- "per_column": current-mode sensing through the column multiplexer (NeuroSim's default,
  ``currentMode = true``): a column conducts only while its ADC converts it, the unselected
  bit lines float (NeuroSim SubArray.cpp), so ``t_sense = t_conv`` per column and the latency
  per read cycle and row group is ``conversions_per_adc * t_conv``.

Latency of one MVM (one input vector; the tiles of a stack run in parallel):
``cycles * groups * (t_pulse + conversions_per_adc * t_conv)``, with ADCs shared by
``adc_share`` columns through a multiplexer and ``t_pulse`` the read pulse of "sample_hold"
sensing (0 for "per_column").

Area of a tile: cells (F^2 per cell by cell type at the node, times the device's
``devices_per_cell``: a HERMES two-device cell is two 1T1R cells), ADCs, row drivers, row decoders
and switch matrices (per row), column multiplexers (per column), write-path level shifters (per
word, bit and source line, when the device's write voltage exceeds the logic supply ``vdd``),
shift-add units and the tile's input/output registers (D flip-flops). Logic is counted in
transistors at the published logic density of the node (``logic_transistor_area`` F^2 each:
Intel's 22 nm and 14 nm standard-cell densities give 135 F^2), about 3x the area per transistor
of a 6T SRAM cell.

Technology scaling (stated rule): digital energies quoted at 45 nm (Horowitz, ISSCC 2014) and the
DAC figures quoted at 32 nm (ISAAC) scale linearly with the node F (switched capacitance ~ F at
a roughly constant supply of ~0.9-1 V below 45 nm, i.e. the end of Dennard voltage scaling);
areas given in F^2 scale with F^2. ADC figures come from the ADC's model (survey figures as
measured, not scaled).
Interconnect between tiles, chip-level buffers and leakage are costed per network in
:mod:`memxbar.mapping.cost` from the parameters declared here.

Cell energy: with "sample_hold" sensing memxbar charges the ohmic power ``V^2 G`` of every
driven cell over the device's whole read pulse (``read_time``); with "per_column" sensing only
over the conversion of its column, as NeuroSim counts the cell current inside its sense
amplifier or ADC over the sensing time (SarADC.cpp column power x (bits + 1) ns). The
capacitive charge of the bit lines is the ``mux`` component in both.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor

from memxbar.crossbar.periphery import ADC
from memxbar.crossbar.periphery.adc_models import NEUROSIM_SOURCE as _NEUROSIM
from memxbar.crossbar.periphery.adc_models import SURVEY_SOURCE as _SURVEY
from memxbar.crossbar.periphery.adc_models import adc_survey_figures
from memxbar.crossbar.tile import Tile, TileConfig
from memxbar.devices.base import Device, Parametrized, param, real_number
from memxbar.errors import ConfigError, plain_value

COMPONENTS = ("cells", "dac", "decoder", "mux", "adc", "shift_add", "buffer")
SENSING = ("sample_hold", "per_column")
BUFFER_TYPES = ("sram", "register")
CELL_TYPES = ("1R", "1T1R", "1FeFET", "1T1MTJ")

_HOROWITZ = ("M. Horowitz, 'Computing's energy problem (and what we can do about it)', ISSCC "
             "2014, energy table for 45 nm, 0.9 V")
_ISAAC = ("Shafiee et al., ISAAC, ISCA 2016, Table I (32 nm), per-unit figures as tabulated in "
          "MNSIM 2.0 Hardware_Model/DAC.py (1-bit DAC 0.0039 mW at 1 GS/s, 0.166 um^2)")
_WESTE = "N. Weste, D. Harris, CMOS VLSI Design, 4th ed. (2011)"
_BOHR = ("M. Bohr, 'Let's clear up the node naming mess', Intel Newsroom, 28 March 2017: "
         "logic transistor density (0.6 NAND2 + 0.4 scan flip-flop cells) 15.3 MTr/mm^2 at "
         "22 nm (135 F^2 per transistor) and 37.5 MTr/mm^2 at 14 nm (136 F^2)")
_NVMX = "NVMExplorer survey (Pentecost et al., HPCA 2022), shared/data/surveys/nvm"

# fields that moved to the hardware (TileConfig and its ADC): where they are set now
MOVED_TO_HARDWARE = {"adc_model": "ADC(model=...), the hardware's ADC (TileConfig.adc.model)",
                     "rows_parallel": "TileConfig.rows_parallel"}


# ====================================================================== the model
MAX_CELLS = 10**15
"""Most cells one :func:`program_cost` call may cost: a thousand times the largest memory
chips' 1e12 bits, so a count beyond it is a typo, not a design."""
MAX_PULSES_PER_CELL = 10**12
"""Most write pulses or verify reads per cell in one programming: write-verify schemes take
1-100; RRAM and PCM endure 1e3-2.8e11 cycles in all (NVMExplorer survey, device-parameters.md
§2.5, §3). Inside int64 counts."""

# Upper bounds of the cost model's fields: sanity limits far beyond every published design, so
# that a typo (a missing exponent, a unit off by 1e9) is refused instead of costed as inf.
AREA_F2 = 1e4  # F^2 per cell or transistor (published cells 4-300 F^2)
ENERGY = 1e-9  # J per bit, add or switching event (published 1e-17-1e-12 J)
TRANSISTORS = 1e4  # transistors per bit, decoder row or multiplexer input (published 2-60)
COUNT = 1 << 20  # columns, bits, arrays (as TileConfig's rows and cols)


@dataclass(frozen=True, kw_only=True)
class CostModel(Parametrized):
    """Technology-node and architecture parameters of the cost model, each with its source.

    Built with keyword arguments; every number is range-checked. ``describe()`` lists them.
    The hardware itself (array, ADC and its ``model``, DAC, ``rows_parallel``) is the
    :class:`~memxbar.crossbar.tile.TileConfig`; its ADC and DAC objects compute their energy,
    area and time from these parameters. The ``adc_*`` survey fields select the measured
    designs of the "survey" ADC model: ``adc_architecture`` is matched against the survey's
    comma-separated architecture tags; time-interleaved designs ("TI") are left out unless
    ``adc_time_interleaved`` is True (a column ADC is a single channel).
    ``sensing``: "sample_hold" or "per_column" read-out (see the module docstring).
    ``buffer_type``: activation buffers of SRAM bit cells ("sram") or of flip-flops
    ("register", NeuroSim's register files).
    """

    node: float = param(22e-9, unit="m", ge=1e-9, le=1e-6, doc="CMOS technology node F",
                        source="NeuroSim V1.4 VGG-8 case (22 nm)")
    # ----------------------------------------------------------------- cells
    cell_area_1r: float = param(
        4.0, unit="F^2", gt=0.0, le=AREA_F2, doc="cross-point cell (1R / 1S1R)",
        source=_NEUROSIM + " Param.cpp: crossbar cell 2F x 2F; " + _NVMX
        + ": 1S1R RRAM 4 F^2 (VLSI 2014)")
    cell_area_1t1r: float = param(
        48.0, unit="F^2", gt=0.0, le=AREA_F2, doc="1T1R cell (RRAM, PCM)",
        source=_NEUROSIM + " Param.cpp: 1T1R cell 4F x 12F; " + _NVMX
        + ": 1T1R-type RRAM/PCM macros 25-53 F^2")
    cell_area_1fefet: float = param(
        12.5, unit="F^2", gt=0.0, le=AREA_F2, doc="1FeFET cell",
        source=_NVMX + " FeFET.csv: 10 F^2 (VLSI 2019) and 15 F^2 (IEDM 2019), midpoint")
    cell_area_1t1mtj: float = param(
        54.0, unit="F^2", gt=0.0, le=AREA_F2, doc="1T1MTJ cell",
        source="NVSim/NVMExplorer default STT cell 54 F^2 (cell_cfgs/STTRAM.cell); "
               + _NVMX + ": 1T1MTJ 50-75 F^2")
    # ----------------------------------------------------------------- ADC
    adc_architecture: str = "SAR"
    adc_time_interleaved: bool = False
    adc_since: int = param(2010, integer=True, ge=1997, le=2100,
                           doc="survey designs published in or after this year", source=_SURVEY)
    adc_enob_min: float = param(4.0, unit="bit", ge=0.0, le=24.0,
                                doc="survey ENOB window, low end",
                                source=_SURVEY)
    adc_enob_max: float = param(8.0, unit="bit", gt=0.0, le=24.0,
                                doc="survey ENOB window, high end",
                                source=_SURVEY)
    adc_percentile: float = param(50.0, ge=0.0, le=100.0,
                                  doc="percentile of the survey's Walden FOM and area per step",
                                  source=_SURVEY)
    adc_share: int = param(8, integer=True, ge=1, le=COUNT,
                           doc="columns sharing one ADC (multiplexer)",
                           source=_NEUROSIM + " Param.cpp numColMuxed = 8")
    adc_clock: float = param(1e9, unit="Hz", ge=1e3, le=1e12,
                             doc="SAR clock: one conversion takes (bits + 1) cycles",
                             source=_NEUROSIM + " SarADC.cpp CalculateLatency: (bits + 1) ns")
    default_adc_bits: int = param(8, integer=True, ge=1, le=24,
                                  doc="ADC resolution costed for an ideal (bits = 0) ADC",
                                  source="assumption; aihwkit's defaults: 9-bit ADC, 7-bit DAC")
    default_dac_bits: int = param(8, integer=True, ge=1, le=24,
                                  doc="DAC resolution costed for an ideal (bits = 0) DAC",
                                  source="assumption; aihwkit's defaults: 9-bit ADC, 7-bit DAC")
    sensing: Literal["sample_hold", "per_column"] = "sample_hold"
    # ----------------------------------------------------------------- DAC / row drivers
    dac_energy_1bit: float = param(3.9e-15, unit="J", ge=0.0, le=ENERGY,
                                   doc="1-bit row driver, one event, at dac_node and dac_cols; "
                                       "x2 per extra bit of a one-shot DAC", source=_ISAAC)
    dac_area_1bit: float = param(0.166e-12, unit="m^2", ge=0.0, le=1e-6,
                                 doc="1-bit row driver area at dac_node; x2 per extra bit",
                                 source=_ISAAC)
    dac_node: float = param(32e-9, unit="m", ge=1e-9, le=1e-6, doc="node of the DAC figures",
                            source=_ISAAC)
    dac_cols: int = param(128, integer=True, ge=1, le=COUNT,
                          doc="columns driven by the quoted DAC (row energy ~ columns)",
                          source="ISAAC 128 x 128 crossbars")
    # ----------------------------------------------------------------- digital
    digital_node: float = param(45e-9, unit="m", ge=1e-9, le=1e-6,
                                doc="node of the digital energies",
                                source=_HOROWITZ)
    add8_energy: float = param(0.03e-12, unit="J", ge=0.0, le=ENERGY, doc="8-bit integer add",
                               source=_HOROWITZ)
    add32_energy: float = param(0.1e-12, unit="J", ge=0.0, le=ENERGY, doc="32-bit integer add",
                                source=_HOROWITZ)
    sram_energy_per_bit: float = param(10e-12 / 64, unit="J", ge=0.0, le=ENERGY,
                                       doc="SRAM access per bit (8 KB array, 64-bit word 10 pJ)",
                                       source=_HOROWITZ)
    sram_cell_area: float = param(280.0, unit="F^2", gt=0.0, le=AREA_F2, doc="6T SRAM bit cell",
                                  source=_NEUROSIM + " Param.cpp: SRAM cell 10F x 28F")
    buffer_type: Literal["sram", "register"] = "sram"
    register_transistors: float = param(
        24.0, gt=0.0, le=TRANSISTORS,
        doc="transistors per register bit (master-slave D flip-flop); a "
                          "register-file buffer bit and the tile's input/output registers",
        source=_WESTE + " (24-T flip-flop); " + _NEUROSIM + " Param.cpp: register-file "
        "buffers (globalBufferType = tileBufferType = peBufferType = false)")
    logic_transistor_area: float = param(
        135.0, unit="F^2", gt=0.0, le=AREA_F2,
        doc="area of one logic transistor, placed standard cells",
        source=_BOHR)
    logic_transistors_per_bit: float = param(
        52.0, gt=0.0, le=TRANSISTORS, doc="transistors per bit of an adder + register",
        source="28-T mirror full adder + 24-T master-slave flip-flop (Weste & Harris, CMOS "
               "VLSI Design, 4th ed.)")
    transistor_energy: float = param(
        0.03e-12 / (8 * 28), unit="J", ge=0.0, le=ENERGY,
        doc="switching energy of one minimum transistor of logic, at digital_node",
        source=_HOROWITZ + ": 8-bit add 0.03 pJ over 8 x 28-T mirror adders")
    # ----------------------------------------------------------------- row / column periphery
    decoder_transistors: float = param(
        58.0, ge=0.0, le=TRANSISTORS,
        doc="row periphery per array row, minimum-transistor equivalents: decoder NAND2 + "
            "inverter (6), input register flip-flop (24), switch-matrix transmission gate "
            "2 x 14 (sized 14x)",
        source=_WESTE + " (gates, 24-T flip-flop); " + _NEUROSIM
        + " Param.cpp newswitchmatrixsizeratio = 14 at 22 nm")
    level_shifter_area: float = param(
        20684.0, unit="F^2", gt=0.0, le=1e6,
        doc="one write level shifter (thick-oxide cross-coupled latch and inverters, wiring "
            "included), one per write line when the device's write voltage exceeds vdd",
        source=_NEUROSIM + " LevelShifter.cpp, validated layout: 205.2F x 70F x 1.44 = "
        "20,684 F^2 (10.0 um^2 at 22 nm); SubArray.cpp: one per word, bit and source line")
    mux_transistors: float = param(
        4.0, ge=0.0, le=TRANSISTORS,
        doc="column multiplexer per physical column: transmission gate (2) + select inverter (2)",
        source=_WESTE)
    wire_capacitance: float = param(0.2e-9, unit="F/m", gt=0.0, le=1e-6,
                                    doc="on-chip wire capacitance per length (0.2 fF/um)",
                                    source=_NEUROSIM + " SubArray.cpp: capBL = length x "
                                    "0.2 fF/um")
    # ----------------------------------------------------------------- chip level
    vdd: float = param(0.85, unit="V", gt=0.0, le=10.0, doc="logic supply (interconnect swing)",
                       source=_NEUROSIM + " Technology.cpp: 22 nm PTM, vdd = 0.85 V")
    wire_pitch: float = param(4.0, unit="F", gt=0.0, le=1000.0,
                              doc="pitch of a global bus wire (2 x wire width)",
                              source=_NEUROSIM + " Param.cpp: wire width 40 nm at 22 nm "
                              "(about 2 F)")
    bus_width: int = param(128, integer=True, ge=1, le=COUNT, unit="bit",
                           doc="wires of the chip-level H-tree between the global buffer and "
                               "the tiles",
                           source=_NEUROSIM + " Param.cpp globalBufferCoreSizeCol = 128 (one "
                           "buffer-core row per bus cycle)")
    bus_activity: float = param(0.5, gt=0.0, le=1.0,
                                doc="fraction of bus wires that toggle per bit moved",
                                source="random data; NeuroSim Param.cpp measures inputtoggle "
                                       "= 0.18 on VGG-8 / CIFAR-10")
    arrays_per_node: int = param(16, integer=True, ge=1, le=COUNT,
                                 doc="arrays per H-tree leaf (a NeuroSim tile)",
                                 source=_NEUROSIM + " Chip.cpp: tile >= 4 x subarray rows, "
                                 "i.e. 4 x 4 arrays")
    leakage_density: float = param(
        911.417e-6 / 84.7747e-6, unit="W/m^2", ge=0.0, le=1e6,
        doc="leakage power per chip area (10.75 uW/mm^2)",
        source=_NEUROSIM + " Data/1.4_Release_test.csv: VGG-8 at 22 nm, 911 uW over "
        "84.77 mm^2")
    activation_bits: int = param(8, integer=True, ge=1, le=64,
                                 doc="bits of a stored activation (layer outputs)",
                                 source="NeuroSim VGG-8 case: 8-bit activations")
    # ----------------------------------------------------------------- programming
    program_pulses: float | None = param(
        None, ge=0.0, le=MAX_PULSES_PER_CELL, nullable=True,
        doc="write pulses per device when programming a tile; None: the device's programming "
            "loop (Device.program_iterations and verify_reads); set, with verify_iterations, "
            "this loop replaces the device's",
        source="the device preset's program-and-verify loop, consistent with the statistic "
               "its programming noise comes from")
    verify_iterations: float | None = param(
        None, ge=0.0, le=MAX_PULSES_PER_CELL, nullable=True,
        doc="program-and-verify iterations per device (each one pulse + one verify read, "
            "beyond program_pulses, default 1); None with program_pulses None: the device's "
            "loop", source="the device preset's program-and-verify loop")

    def __new__(cls, *args: object, **kwargs: object) -> CostModel:
        """Refuse the fields that moved to the hardware, saying where they are set now."""
        for name, where in MOVED_TO_HARDWARE.items():
            if name in kwargs:
                raise ConfigError(f"CostModel.{name} = {kwargs[name]!r} is not a cost-model "
                                  f"field any more; it is a hardware field now: set {where}")
        return super().__new__(cls)

    def _check(self) -> None:
        o = "CostModel"
        for name, allowed in (("sensing", SENSING), ("buffer_type", BUFFER_TYPES)):
            if getattr(self, name) not in allowed:
                raise ConfigError(f"{o}.{name} = {getattr(self, name)!r} is not allowed; "
                                 f"allowed: {', '.join(allowed)}")
        if not isinstance(self.adc_architecture, str) or not self.adc_architecture.strip():
            raise ConfigError(f"{o}.adc_architecture = {self.adc_architecture!r} is not allowed;"
                             " allowed: a survey architecture tag such as 'SAR', 'Flash', "
                             "'Pipe'")
        if not isinstance(self.adc_time_interleaved, bool):
            raise ConfigError(f"{o}.adc_time_interleaved = {self.adc_time_interleaved!r} is not "
                             "allowed; allowed: True or False")
        if self.adc_enob_min > self.adc_enob_max:
            raise ConfigError(f"{o}: adc_enob_min = {self.adc_enob_min} must not exceed "
                             f"adc_enob_max = {self.adc_enob_max}")
        adc_survey_figures(self)  # the survey selection must hold designs

    def describe(self) -> str:
        """Every parameter with its value, unit and source, one per line."""
        lines = ["CostModel"]
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            m = f.metadata.get("param")
            if m is None:
                lines.append(f"  {f.name:<26} {value!s}")
                continue
            src = f"  [{m['source']}]" if m["source"] else ""
            lines.append(f"  {f.name:<26} {value!s:<14} {m['unit']:<6} {m['doc']}{src}")
        return "\n".join(lines)


def _index(where: str, name: str, value: object, hi: int) -> int:
    """A count of rows, columns or row groups of one tile: an integer in [0, hi]."""
    v = plain_value(value)
    if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= hi:
        raise ConfigError(f"{where}: {name} = {value!r} is not allowed; allowed: an integer in "
                          f"[0, {hi}]")
    return v


def add_energy(width: int | float, model: CostModel) -> float:
    """Energy (J) of one ``width``-bit integer addition at the node: Horowitz's 8-bit and
    32-bit adds, linear in width between them, proportional to width outside, times
    ``node / digital_node``."""
    w = real_number(width, "width (bits)", "add_energy", positive=False)
    a8, a32 = model.add8_energy, model.add32_energy
    if w <= 8:
        e = a8 * w / 8
    elif w <= 32:
        e = a8 + (a32 - a8) * (w - 8) / 24
    else:
        e = a32 * w / 32
    return e * model.node / model.digital_node


def buffer_energy(bits: int | float, model: CostModel) -> float:
    """Energy (J) of reading or writing ``bits`` bits of the activation buffer: SRAM access
    energy, or for a register file ``register_transistors`` switching per bit, at the node."""
    b = real_number(bits, "bits", "buffer_energy", positive=False)
    if model.buffer_type == "register":
        return b * logic_energy(model.register_transistors, model)
    return b * model.sram_energy_per_bit * model.node / model.digital_node


def buffer_area(bits: int | float, model: CostModel) -> float:
    """Area (m^2) of ``bits`` bits of activation buffer: SRAM bit cells (array only, no macro
    periphery) or register-file flip-flops (:func:`register_area`)."""
    b = real_number(bits, "bits", "buffer_area", positive=False)
    if model.buffer_type == "register":
        return register_area(b, model)
    return b * model.sram_cell_area * model.node ** 2


def register_area(bits: int | float, model: CostModel) -> float:
    """Area (m^2) of ``bits`` D flip-flops (``register_transistors`` each)."""
    b = real_number(bits, "bits", "register_area", positive=False)
    return b * model.register_transistors * transistor_area(model)


def logic_area(bits: int | float, model: CostModel) -> float:
    """Area (m^2) of a ``bits``-wide adder with its register."""
    b = real_number(bits, "bits", "logic_area", positive=False)
    return b * model.logic_transistors_per_bit * transistor_area(model)


def transistor_area(model: CostModel) -> float:
    """Area (m^2) of one logic transistor: ``logic_transistor_area * node^2``."""
    return model.logic_transistor_area * model.node ** 2


def logic_energy(transistors: float, model: CostModel) -> float:
    """Energy (J) of ``transistors`` minimum transistors switching once, at the node
    (``transistor_energy * node / digital_node``)."""
    n = real_number(transistors, "transistors", "logic_energy", positive=False)
    return n * model.transistor_energy * model.node / model.digital_node


def bitline_energy(config: TileConfig, model: CostModel) -> float:
    """Energy (J) of charging one bit line of the array to the read voltage:
    ``wire_capacitance * rows * sqrt(cell footprint) * V_read^2`` (:func:`cell_footprint`)."""
    length = config.rows * math.sqrt(cell_footprint(config.device, model))
    return model.wire_capacitance * length * config.device.read_voltage ** 2


def cell_footprint(device: Device, model: CostModel) -> float:
    """Area (m^2) of one modelled cell of ``device``: its ``devices_per_cell`` physical
    devices, each a cell of its ``cell_type`` (e.g. HERMES two-device cells: two 1T1R cells)."""
    return device.devices_per_cell * cell_area(device.cell_type, model)


def cell_area(cell_type: str, model: CostModel) -> float:
    """Area (m^2) of one memory cell of ``cell_type`` ("1R", "1T1R", "1FeFET", "1T1MTJ")."""
    field = {"1R": model.cell_area_1r, "1T1R": model.cell_area_1t1r,
             "1FeFET": model.cell_area_1fefet, "1T1MTJ": model.cell_area_1t1mtj}
    if cell_type not in field:
        raise ConfigError(f"cell_area: cell_type = {cell_type!r} is not known; allowed: "
                         f"{', '.join(CELL_TYPES)}")
    return field[cell_type] * model.node ** 2


# ====================================================================== one tile
def n_adcs(config: TileConfig, model: CostModel) -> int:
    """ADCs per tile: the tile's converters (``config.adc_cols``) shared ``adc_share`` to one
    ADC."""
    return -(-config.adc_cols // model.adc_share)


def converters(config: TileConfig, used_weight_cols: int | None = None) -> int:
    """Converters in use per read cycle and row group for ``used_weight_cols`` weight columns
    holding weights (default all): their bit slices, plus the offset reference column."""
    wc = config.weight_cols if used_weight_cols is None else _index(
        "converters", "used_weight_cols", used_weight_cols, config.weight_cols)
    return config.scheme.adc_cols(wc) if wc else 0


def conversions_per_adc(config: TileConfig, model: CostModel,
                        used_weight_cols: int | None = None) -> int:
    """Conversions the busiest ADC makes per read cycle and row group: its share of the tile's
    converters, or fewer when fewer converters are in use (``used_weight_cols``)."""
    share = -(-config.adc_cols // n_adcs(config, model))
    return min(share, converters(config, used_weight_cols))


def row_groups(config: TileConfig, rows: int | None = None) -> int:
    """Row groups read one after the other for ``rows`` rows holding weights (default all
    rows of the tile): ``ceil(rows / config.rows_parallel)``, 1 with all rows at once, 0 for
    no rows."""
    r = config.rows if rows is None else _index("row_groups", "rows", rows, config.rows)
    if r == 0:
        return 0
    rp = config.rows_parallel
    return 1 if rp is None else -(-r // rp)


def accumulator_bits(config: TileConfig, model: CostModel, groups: int = 1) -> int:
    """Width of the shift-add accumulator: ADC bits, plus the shifts of bit-serial input cycles
    and of weight slices, plus the carries of ``groups`` row groups."""
    groups = _index("accumulator_bits", "groups", groups, config.rows)
    shift_in = config.dac.bits - 1 if config.dac.bit_serial else 0
    shift_w = config.bits_per_cell * (config.n_slices - 1)
    return (config.adc.cost_bits(model) + shift_in + shift_w
            + math.ceil(math.log2(max(groups, 1))))


def read_pulse(config: TileConfig, model: CostModel) -> float:
    """Time (s) the rows are driven before the conversions start: the device's read pulse
    with "sample_hold" sensing, 0 with "per_column" sensing (columns conduct while converted)."""
    return config.device.read_time if model.sensing == "sample_hold" else 0.0


def sense_time(config: TileConfig, model: CostModel) -> float:
    """Time (s) a driven cell conducts per read cycle and row group: the read pulse
    ("sample_hold") or the conversion of its column ("per_column")."""
    if model.sensing == "sample_hold":
        return config.device.read_time
    return config.adc.conversion_time(model)


def mvm_latency(config: TileConfig, model: CostModel, groups: int | None = None,
                used_weight_cols: int | None = None) -> float:
    """Time (s) of one MVM (one input vector) of a tile: read cycles x row groups x (read
    pulse + conversions of the busiest ADC x conversion time). ``groups`` defaults to all
    rows (:func:`row_groups`), ``used_weight_cols`` to all weight columns."""
    g = row_groups(config) if groups is None else _index("mvm_latency", "groups", groups,
                                                         config.rows)
    t_conv = config.adc.conversion_time(model)
    return config.dac.n_cycles * g * (
        read_pulse(config, model) + conversions_per_adc(config, model, used_weight_cols) * t_conv)


def write_lines(config: TileConfig) -> int:
    """Lines of the tile's arrays that a write drives above the logic supply: rows + columns
    of a two-terminal ("1R") array; word line and bit line per row plus source line per column
    of a three-terminal cell (1T1R, 1FeFET, 1T1MTJ; NeuroSim's 1T1R pseudo-crossbar)."""
    per_row = 1 if config.device.cell_type == "1R" else 2
    return config.n_arrays * (per_row * config.rows + config.cols)


def input_register_bits(config: TileConfig, model: CostModel) -> int:
    """Bits of the register holding one input vector of a tile (``rows`` DAC codes)."""
    return config.rows * config.dac.code_bits(model)


def tile_area(config: TileConfig, model: CostModel, *,
              input_register: bool = True) -> dict[str, float]:
    """Area (m^2) of one tile per component: "cells" (every cell of its arrays,
    :func:`cell_footprint`),
    "adc" (the tile's ADCs, :func:`n_adcs`, each ``config.adc.area``), "dac" (one driver per
    row of each array, ``config.dac.area``), "decoder" (row decoder, register and switch
    matrix per row of each array), "mux" (column multiplexer per physical column), "write" (a
    level shifter per write line, :func:`write_lines`, when the device's write voltage exceeds
    ``vdd``), "shift_add" (one accumulator per ADC) and "buffer" (flip-flop output register of
    the partial sums and, with ``input_register``, the input register of one vector; tiles
    that share their input vector share one, see :mod:`memxbar.mapping.cost`)."""
    config.adc.check_cost(model)
    acc = accumulator_bits(config, model, row_groups(config))
    nadc = n_adcs(config, model)
    rows = config.rows * config.n_arrays
    shifted = config.device.write_voltage > model.vdd
    reg_bits = config.weight_cols * acc + (input_register_bits(config, model)
                                           if input_register else 0)
    return {
        "cells": config.n_arrays * config.rows * config.cols
        * cell_footprint(config.device, model),
        "dac": rows * config.dac.area(model),
        "decoder": rows * model.decoder_transistors * transistor_area(model),
        "mux": config.cols * config.n_arrays * model.mux_transistors * transistor_area(model),
        "write": (write_lines(config) * model.level_shifter_area * model.node ** 2
                  if shifted else 0.0),
        "adc": nadc * config.adc.area(model),
        "shift_add": nadc * logic_area(acc, model),
        "buffer": register_area(reg_bits, model),
    }


@dataclass(frozen=True)
class MVMCost:
    """Cost of one :meth:`Tile.mvm` call: ``energy`` (J per component, summed over the batch
    and the stack), ``latency`` (s per input vector, stacked tiles in parallel), counts of ADC
    conversions and driven row-cycles, the batch size ``vectors`` and the cycles x groups of
    the slowest tile."""

    energy: dict[str, float]
    latency: float
    conversions: float
    active_rows: float
    vectors: int
    read_cycles: int

    @property
    def total(self) -> float:
        """Energy of all components (J)."""
        return float(sum(self.energy.values()))


def _per_tile(name: str, value: int | Tensor | None, default: int, hi: int,
              lead: torch.Size) -> Tensor:
    """``value`` (an int or a tensor broadcastable to ``lead``; None: ``default``) as an int64
    tensor of shape ``lead``, checked to lie in ``[0, hi]``."""
    t = torch.as_tensor(default if value is None else value, dtype=torch.int64)
    try:
        t = t.expand(lead)
    except RuntimeError:
        raise ConfigError(f"mvm_cost: {name} of shape {tuple(t.shape)} does not broadcast to "
                          f"{tuple(lead)}") from None
    if bool((t < 0).any()) or bool((t > hi).any()):
        raise ConfigError(f"mvm_cost: {name} must lie in [0, {hi}]")
    return t


def weight_cells(tile: Tile, used_rows: Tensor | None = None,
                 used_cols: Tensor | None = None) -> Tensor:
    """Mask (bool, ``(*shape, n_arrays, rows, used_cols)``, on the device of the tile's cells)
    of the physical cells that hold weights: the ``used_rows`` rows and the physical columns of
    the ``used_cols`` weight columns of each tile (int64 per tile, broadcastable to the stack;
    default the tile's ``used_rows`` / ``used_weight_cols``): both devices of a differential
    pair, every bit slice and every array, plus the encoding's reference column on the used
    rows. The other cells are padding: neither programmed nor read."""
    cfg, shape = tile.config, tile.shape
    sc = cfg.scheme
    dev = tile.state.g.device if tile.state is not None else torch.device("cpu")
    rows = (tile.used_rows if used_rows is None else used_rows).to(dev).expand(shape)
    cols = (tile.used_weight_cols if used_cols is None else used_cols).to(dev).expand(shape)
    r_ok = torch.arange(cfg.rows, device=dev) < rows[..., None]  # (*shape, R)
    c_ok = torch.arange(cfg.weight_cols, device=dev) < cols[..., None]  # (*shape, wc)
    cells = (r_ok[..., :, None] & c_ok[..., None, :]).to(torch.uint8)
    cells = cells[..., None, None, :, :].expand(*shape, sc.polarities, sc.n_slices, cfg.rows,
                                                 cfg.weight_cols)
    ref = (r_ok.to(torch.uint8)[..., None].expand(*shape, cfg.rows, sc.reference_cols)
           if sc.reference_cols else None)
    return sc.arrange(cells, ref).bool()


@torch.no_grad()
def mvm_cost(tile: Tile, x: Tensor, model: CostModel | None = None, *,
             used_rows: int | Tensor | None = None, used_cols: int | Tensor | None = None,
             config: TileConfig | None = None) -> MVMCost:
    """Energy and latency of ``tile.mvm(x)``: ``x`` ``(*shape, B, rows)`` as passed to the tile
    (leading dims may broadcast, as in :meth:`Tile.mvm`; a broadcast input is read from the
    buffer once and drives the rows of every tile it reaches).

    ``used_rows``: rows holding weights (the rest is padding), an int or a tensor broadcastable
    to ``x.shape[:-2]``; default the tile's own (``tile.used_rows``). It sets the row groups
    and the buffer reads. ``used_cols``: weight columns holding weights per tile, an int or a
    tensor broadcastable to the stack shape; default the tile's own
    (``tile.used_weight_cols``). Only their converters convert
    (``config.conversions_per_vector``), as the tile counts them in ``tile.adc_conversions``.
    ``config``: the physical array whose periphery converts (ADCs, their sharing and model,
    row drivers, ``rows_parallel``), when the tile simulates only its used part; default
    ``tile.config``. The cell (read) energy counts only the cells holding weights
    (:func:`weight_cells` of ``used_rows`` and ``used_cols``): padding cells are not read."""
    model = model or CostModel()
    if not isinstance(model, CostModel):
        raise ConfigError(f"mvm_cost: model = {model!r} is not a CostModel")
    if not isinstance(tile, Tile):
        raise ConfigError(f"mvm_cost: tile = {tile!r} is not a Tile")
    if tile.state is None:
        raise ConfigError("mvm_cost: the tile is not programmed; call program(W) first")
    cfg, shape = tile.config, tile.shape
    phys = config or cfg
    phys.adc.check_cost(model)
    if not isinstance(x, Tensor) or x.dim() != len(shape) + 2 or x.shape[-1] != cfg.rows:
        got = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
        raise ConfigError(f"mvm_cost: x has shape {got}; allowed: (*shape, B, {cfg.rows}) with "
                          f"shape = {tuple(shape)}")
    try:
        ok = torch.broadcast_shapes(x.shape[:-2], shape) == shape
    except RuntimeError:
        ok = False
    if not ok:
        raise ConfigError(f"mvm_cost: x leading dims {tuple(x.shape[:-2])} do not broadcast to "
                          f"the tile stack {tuple(shape)}")
    if not bool(torch.isfinite(x).all()):
        raise ConfigError("mvm_cost: x has non-finite values; allowed: finite inputs")
    lead = x.shape[:-2]
    if used_rows is None:  # the tile's own, one value per input where the input broadcasts
        bcast = tuple(i for i, (a, b) in enumerate(zip(lead, shape, strict=True)) if a < b)
        own = tile.used_rows.to(torch.int64)
        used = own.amax(dim=bcast, keepdim=True) if bcast else own
        rows_tile = own
    else:
        used = _per_tile("used_rows", used_rows, cfg.rows, cfg.rows, lead)
        rows_tile = used.expand(shape)
    ucols = _per_tile("used_cols", tile.used_weight_cols if used_cols is None else used_cols,
                      cfg.weight_cols, phys.weight_cols, shape)
    dev = cfg.device
    B = x.shape[-2]
    planes, _, volt = cfg.dac.encode(x.to(torch.float64))
    # cells: t_sense V^2 sum_c sum_rows (code volt)^2 G_row, G_row over the cells holding
    # weights (each cell's branch conductance: the device in series with its access transistor)
    g_cell = dev.effective_g(dev.read_mean(tile.state, tile.t).to(torch.float64))
    held = weight_cells(tile, rows_tile, ucols.clamp(max=cfg.weight_cols))
    g_row = torch.where(held, g_cell, 0.0).sum(dim=(-3, -1))  # (*shape, R)
    v2 = (planes * volt).square_().sum(dim=(0, -2))  # (*lead, R)
    e_cells = sense_time(phys, model) * dev.read_voltage ** 2 * float((v2 * g_row).sum())
    # row drivers: one event per non-zero code and cycle, in every tile the input reaches
    active = (planes != 0).sum(dim=(0, -2)).to(torch.float64)  # (*lead, R)
    n_active = float(active.expand(*shape, cfg.rows).sum())
    e_dac = n_active * phys.dac.energy(model, phys.cols * phys.n_arrays)
    # conversions: what the tiles perform, per (used rows, used weight columns) of a tile
    pairs, counts = torch.unique(torch.stack([rows_tile.flatten(), ucols.flatten()]), dim=1,
                                 return_counts=True)
    t_conv = phys.adc.conversion_time(model)
    nc = cfg.dac.n_cycles
    per_vector, groups, gmax, latency = 0, 0, 0, 0.0
    for (r, c), k in zip(pairs.t().tolist(), counts.tolist(), strict=True):
        g = row_groups(phys, r)
        per_vector += k * (phys.conversions_per_vector(c, r) if g else 0)
        groups += k * g
        gmax = max(gmax, g)
        latency = max(latency, nc * g * (read_pulse(phys, model)
                                         + conversions_per_adc(phys, model, c) * t_conv))
    conversions = float(B * per_vector)
    e_adc = conversions * phys.adc.conversion_energy(model)
    e_sa = conversions * add_energy(accumulator_bits(phys, model, gmax), model)
    # activation buffer: every input of a used row read once
    e_buf = buffer_energy(B * int(used.sum()) * phys.dac.code_bits(model), model)
    # row periphery: one decoder/switch-matrix event per driven row and cycle
    e_dec = n_active * logic_energy(model.decoder_transistors, model)
    # column periphery: a mux switch per conversion, every bit line charged per cycle and group
    line_reads = float(nc * B * groups * phys.cols * phys.n_arrays)
    e_mux = (conversions * logic_energy(model.mux_transistors, model)
             + line_reads * bitline_energy(phys, model))
    energy = {"cells": e_cells, "dac": e_dac, "decoder": e_dec, "mux": e_mux, "adc": e_adc,
              "shift_add": e_sa, "buffer": e_buf}
    return MVMCost(energy=energy, latency=latency, conversions=conversions,
                   active_rows=n_active, vectors=B, read_cycles=nc * gmax)


# ====================================================================== programming
@dataclass(frozen=True)
class ProgramCost:
    """Cost of programming cells: ``energy`` (J), ``time`` (s), total write ``pulses`` and
    ``verify_reads``, number of ``cells``."""

    energy: float
    time: float
    pulses: float
    verify_reads: float
    cells: int


def _count(name: str, value: float | Tensor, cells: int, like: Tensor | None) -> float:
    """Total of per-cell counts ``value`` (a scalar per cell, or one per cell), each in
    [0, :data:`MAX_PULSES_PER_CELL`]."""
    if isinstance(value, Tensor):
        v = value.to(torch.float64)
        if like is not None:
            try:
                v = v.expand(like.shape)
            except RuntimeError:
                raise ConfigError(f"program_cost: {name} of shape {tuple(value.shape)} does not "
                                 f"broadcast to the cells {tuple(like.shape)}") from None
        elif v.numel() not in (1, cells):
            raise ConfigError(f"program_cost: {name} has {v.numel()} entries; expected one per "
                             f"cell ({cells}) or a scalar")
        if not bool(torch.isfinite(v).all()) or bool((v < 0).any()) or bool(
                (v > MAX_PULSES_PER_CELL).any()):
            raise ConfigError(f"program_cost: {name} must be finite and in [0, "
                              f"{MAX_PULSES_PER_CELL:.0e}] per cell")
        return float(v.sum()) * (cells if v.numel() == 1 and like is None else 1)
    value = plain_value(value)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (
            0 <= value <= MAX_PULSES_PER_CELL):
        raise ConfigError(f"program_cost: {name} = {value!r} is not allowed; allowed: a number "
                         f"in [0, {MAX_PULSES_PER_CELL:.0e}] per cell or a tensor of per-cell "
                         "counts")
    return float(value) * cells


def program_cost(device: Device, cells: int | Tensor, *, pulses: float | Tensor | None = None,
                 verify_iterations: float | Tensor | None = None, parallel: int = 1,
                 verify_adc: ADC | None = None,
                 model: CostModel | None = None) -> ProgramCost:
    """Energy and time of programming ``cells`` (a count, or the cells' target conductances in S)
    of ``device``.

    Default (``pulses`` and ``verify_iterations`` both None): the device's programming loop,
    the one its programming statistic comes from, run on each of its ``devices_per_cell``
    devices: ``program_iterations`` write pulses and ``verify_reads`` verify reads per device,
    each read of one device holding ``1 / devices_per_cell`` of the cell's conductance.
    Otherwise the given counts per cell (a number, or per-cell counts; a missing one: 1 pulse,
    0 reads), each read of the whole cell. Each pulse costs the device's ``write_energy`` and
    ``write_time``; each verify read costs ``V_read^2 * G * t_read`` (G: the given
    conductances, else mid-range, in series with the device's ``access_resistance``) plus one
    ADC conversion by ``verify_adc`` (default ``ADC()``: the survey model at
    ``model.default_adc_bits``) and takes ``t_read + t_conv``.
    ``parallel`` cells are written at once (time divides by it; e.g. a row of a tile)."""
    model = model or CostModel()
    if not isinstance(device, Device):
        raise ConfigError(f"program_cost: device = {device!r} is not a memxbar Device")
    parallel, cells = plain_value(parallel), plain_value(cells)
    if isinstance(parallel, bool) or not isinstance(parallel, int) or parallel < 1:
        raise ConfigError(f"program_cost: parallel = {parallel!r} is not allowed; allowed: an "
                         "integer >= 1")
    like: Tensor | None = None
    if isinstance(cells, Tensor):
        like = cells.detach().to(torch.float64)
        if not bool(torch.isfinite(like).all()) or bool((like < 0).any()):
            raise ConfigError("program_cost: cell conductances must be finite and >= 0 S")
        n = like.numel()
    elif isinstance(cells, bool) or not isinstance(cells, int) or not 0 <= cells <= MAX_CELLS:
        raise ConfigError(f"program_cost: cells = {cells!r} is not allowed; allowed: an integer "
                         f"in [0, {MAX_CELLS:.0e}] or a tensor of conductances (S)")
    else:
        n = cells
    share = 1.0  # fraction of the cell's conductance one verify read sees
    if pulses is None and verify_iterations is None:
        d = device.devices_per_cell
        pulses, verify_iterations = device.program_iterations * d, device.verify_reads * d
        share = 1.0 / d
    pulses = 1.0 if pulses is None else pulses
    verify_iterations = 0.0 if verify_iterations is None else verify_iterations
    n_pulses = _count("pulses", pulses, n, like)
    n_reads = _count("verify_iterations", verify_iterations, n, like)
    adc = ADC() if verify_adc is None else verify_adc
    if not isinstance(adc, ADC):
        raise ConfigError(f"program_cost: verify_adc = {adc!r} is not an ADC")
    adc.check_cost(model)
    # conductance a verify read sees: one device's share, in series with its access transistor
    g_mid = torch.tensor(0.5 * (device.g_min + device.g_max), dtype=torch.float64)
    g_read = device.effective_g((g_mid if like is None else like) * share)
    if like is None:
        g_reads = n_reads * float(g_read)
    elif isinstance(verify_iterations, Tensor):
        g_reads = float((verify_iterations.to(torch.float64).expand(like.shape) * g_read).sum())
    else:
        g_reads = float(verify_iterations) * float(g_read.sum())
    e_read = device.read_voltage ** 2 * device.read_time * g_reads
    energy = n_pulses * device.write_energy + e_read + n_reads * adc.conversion_energy(model)
    time = (n_pulses * device.write_time
            + n_reads * (device.read_time + adc.conversion_time(model))) / parallel
    return ProgramCost(energy=energy, time=time, pulses=n_pulses, verify_reads=n_reads, cells=n)


def tile_program_cost(tile: Tile, model: CostModel | None = None, *,
                      pulses: float | Tensor | None = None,
                      verify_iterations: float | Tensor | None = None) -> ProgramCost:
    """Programming cost of the cells of a programmed tile stack that hold weights (their
    programmed conductances), one row of each tile at a time, the tiles of the stack in
    parallel.

    Only the cells holding weights are costed (:func:`weight_cells`: the used rows and the
    physical columns of the used weight columns, with both devices of a differential pair,
    every slice and array and the reference column); padding cells are not programmed. So
    the cost is the same whether the tile simulates its used part or the whole array. Time:
    the row steps (the most used rows of any tile of the stack) times the mean time of one
    used cell, i.e. the used cells of a row written at once.

    The loop, per device of a cell (``devices_per_cell`` devices each): the cost model's when
    it sets one (``model.program_pulses``, default 1, initial pulses plus
    ``model.verify_iterations`` iterations of one pulse and one verify read), else the
    device's (``program_iterations`` pulses, ``verify_reads`` reads; :func:`program_cost`).
    ``pulses`` / ``verify_iterations`` (a number, or per-cell counts broadcastable to the
    tile's cells ``(*shape, n_arrays, rows, used_cols)``) override the cost model's two
    fields."""
    model = model or CostModel()
    if tile.state is None:
        raise ConfigError("tile_program_cost: the tile is not programmed")
    cfg = tile.config
    dev = cfg.device
    g = tile.state.g
    held = weight_cells(tile)

    def used(name: str, v: float | Tensor) -> float | Tensor:
        if not isinstance(v, Tensor):
            return v
        try:
            return v.expand(g.shape)[held]
        except RuntimeError:
            raise ConfigError(f"tile_program_cost: {name} of shape {tuple(v.shape)} does not "
                              f"broadcast to the cells {tuple(g.shape)}") from None

    p = model.program_pulses if pulses is None else pulses
    k = model.verify_iterations if verify_iterations is None else verify_iterations
    if p is None and k is None:
        cost = program_cost(dev, g[held], verify_adc=cfg.adc, model=model)
    else:
        d = dev.devices_per_cell
        reads = 0.0 if k is None else k
        total = (1.0 if p is None else p) + reads
        cost = program_cost(dev, g[held] / d, pulses=used("pulses", total * d),
                            verify_iterations=used("verify_iterations", reads * d),
                            verify_adc=cfg.adc, model=model)
    steps = int(tile.used_rows.max()) if tile.used_rows.numel() else 0
    return dataclasses.replace(cost, time=cost.time * steps / cost.cells if cost.cells else 0.0)
