"""memxbar's cost model on DNN+NeuroSim V1.4's published VGG-8 / CIFAR-10 case, beside NeuroSim.

NeuroSim's figures (DNN+NeuroSim V1.4 manual, Table VII, as recorded in the project's
reference/landscape.md): 22 nm, RRAM 128 x 128 arrays, 8-bit weights and activations, 1 bit per
cell, 4-bit ADC, 32 rows read in parallel: 11.25 TOPS/W, 6.25 TOPS, 381.9 mm^2; 64 rows in
parallel: 19.88 TOPS/W; and NeuroSim's own release test of the same network (assumption 15 gives
the parameters of each). This script builds the same network and hardware in memxbar, runs it on
random CIFAR-sized images, and prints memxbar's TOPS/W and area beside NeuroSim's with the ratio
memxbar / NeuroSim. No constant was tuned to approach NeuroSim's numbers: every cost parameter
is memxbar's default (memxbar.crossbar.cost.CostModel) except the ones the case fixes (the
node; on the hardware, TileConfig: rows read in parallel and the ADC's model) and the two
architecture options NeuroSim's Param.cpp sets for this case (current-mode sensing through the
column multiplexer, register-file buffers). Each hardware (configuration, ADC model, rows in
parallel) is its own programmed model: rows read in parallel are simulated as well as costed.

Assumptions (all of them):

1. Network: NeuroSim's VGG-8 for CIFAR-10: conv 3->128, 128->128, max-pool, 128->256,
   256->256, max-pool, 256->512, 512->512, max-pool, fc 8192->1024, 1024->10; 3x3 kernels,
   padding 1, ReLU after every conv and after fc 8192->1024, 2x2 max pooling, no batch norm.
   All 8 layers are analog. Weights are random (PyTorch default init, seed 0): cost does not
   need training, but the activations (and so their sparsity, which sets the cell, DAC and
   buffer energy) are those of random weights on random images, not NeuroSim's trained
   network on CIFAR-10 images.
2. Input: 2 random images 3 x 32 x 32, uniform in [0, 1] (seed 1); figures are per image.
   Ops = 2 x MACs of the 8 layers = 1.232e9 per image.
3. Device: memxbar preset "rram-falcone2025" (1T1R RRAM) with its conductance window and read
   voltage set to each NeuroSim configuration (assumption 15; on/off = 17 in all) and a 10 ns
   read pulse. Its programming noise changes the conductances by about 1 %; write pulse
   1.5 V / 50 ns / 10 pJ from the preset (only the programming cost uses it). Cell area 48 F^2
   (1T1R, NeuroSim's 4F x 12F).
4. Tile: 128 x 128 cells, "offset" encoding (one cell column per weight bit holds
   weight + 127 in binary; a reference column per tile is converted and subtracted digitally,
   as NeuroSim's dummy column), weight_bits = 8, bits_per_cell = 1: 8 slices, 15 weight columns
   per tile (NeuroSim: 16 per 128 columns, dummy columns outside the array). Ideal wires, read
   noise off (the cost model does not use them; it speeds the run).
5. Inputs: bit-serial DAC with bits = 9 (memxbar's DAC bits include a sign bit), i.e. 8
   magnitude bits, so an 8-bit non-negative activation takes 8 read cycles as in NeuroSim;
   each cycle is a 1-bit row-driver event (ISAAC 1-bit DAC energy, scaled to 22 nm), zero bits
   cost nothing. Inputs of every layer are scaled per input vector to the DAC range (memxbar's
   "dynamic" input scaling).
6. ADC: 4 bits, fixed range (the range does not change the cost), 8 columns share one ADC
   through a multiplexer (NeuroSim numColMuxed = 8), one conversion per column, read cycle and
   row group of 32 rows (4 groups per full tile). Sensing "per_column" (NeuroSim Param.cpp
   currentMode = true; SubArray.cpp: unselected lines float): a column conducts only during its
   own conversion, (bits + 1) ns = 5 ns, so the cell energy is V^2 G x 5 ns per column and
   cycle (not the 10 ns read pulse) and a cycle takes 8 conversions, 40 ns. Two ADC
   energy/area models are shown:
   "neurosim" = NeuroSim's SAR-ADC power fit at 22 nm, HP roadmap, (0.7213 b + 3.3041) uW x
   (b + 1) ns = 31 fJ at 4 bits, area from its transistor count (1024 transistors at logic
   density) (the like-for-like row: NeuroSim's own circuit figures; NeuroSim's default
   read-out for this case is its multilevel current sense amplifier, Param.cpp
   SARADC = false, which memxbar does not model);
   "survey" = memxbar's default, median Walden FOM of single-channel SAR ADCs with ENOB 4-8
   published since 2010 in Murmann's survey (25 fJ/step -> 0.40 pJ at 4 bits) and median area
   per conversion step (63 um^2 -> 0.001 mm^2 at 4 bits).
7. Technology 22 nm: digital energies of Horowitz (ISSCC 2014, 45 nm) scaled linearly with the
   node, areas in F^2 with F = 22 nm; logic (decoders, muxes, adders, flip-flops, the
   "neurosim" ADC) at Intel's published 22 nm logic density, 15.3 MTr/mm^2 = 135 F^2 per
   transistor; adder + register 52 transistors per bit, flip-flop 24.
8. Weight duplication as NeuroSim's pipeline (Param.cpp: pipeline = true, speedUpDegree = 8):
   Chip.cpp ChipDesignInitialize caps the degree at max / min input size of the conv layers
   (32 / 8 = 4) and maps layer i ceil((IFM_i / ceil(32 / 4))^2) times: conv 1-2 x16,
   conv 3-4 x4, conv 5-6 and the fc layers x1 (``estimate_cost(..., duplication=...)``).
   Latency: tiles of a layer in parallel, one MVM per output position split among the copies,
   layers in sequence; TOPS are from the pipelined throughput (NeuroSim's pipeline figure).
9. Periphery (memxbar defaults, crossbar.cost.CostModel): row decoder + input register +
   switch matrix 58 minimum transistors per row, column mux 4 per column (Weste & Harris;
   NeuroSim's switch-matrix sizing 14x at 22 nm), logic energy 0.13 fJ per transistor at 45 nm
   (Horowitz's 8-bit add over 8 x 28-T adders) scaled with the node; bit lines charged to
   0.5 V at 0.2 fF/um (NeuroSim SubArray.cpp) once per column, cycle and row group. Write
   path: the preset's 1.5 V writes (NeuroSim's Param.cpp: 2 V) exceed the 0.85 V logic supply,
   so every word, bit and source line (2 per row + 1 per column, 384 per array) has a level
   shifter of 20,684 F^2 (NeuroSim LevelShifter.cpp, validated layout; 10.0 um^2 at 22 nm).
10. Buffers: register files (NeuroSim Param.cpp globalBufferType = tileBufferType =
   peBufferType = false): 24-T flip-flops at logic density per bit, one flip-flop switching
   per bit accessed, for a tile-level buffer per layer holding one input of the layer, a global
   buffer holding the largest input + output of any layer, and the tile registers: one
   partial sum per weight column of each array, one input vector per row block of arrays (the
   arrays of a row block share their input, as NeuroSim's PE shares its input buffer among its
   16 subarrays); every layer input read per tile, every output written once.
11. Interconnect: an H-tree of 128 wires (NeuroSim's 128-column buffer core) at a 4 F pitch
   over the square chip (side = sqrt of the area of tiles and buffers), one leaf per 16 arrays
   (a NeuroSim tile); every input and output activation bit moves root to leaf (length =
   side), 0.2 fF/um, 0.85 V (NeuroSim's 22 nm PTM), half the wires toggling (random data;
   NeuroSim measures 0.18 on VGG-8).
12. Leakage: 10.75 uW/mm^2 (NeuroSim V1.4's own release test of VGG-8 at 22 nm: 911 uW over
   84.8 mm^2) over the chip area for one pipeline period.
13. Activation and pooling units: one 8-bit comparison per ReLU element and inputs - outputs
   per 2x2 max pooling (0.63 M per image), as 8-bit additions, 16 lanes per module.
14. Not modelled by memxbar (and included in NeuroSim): control logic, source-line switch
   matrices, buffer-macro periphery, interconnect latency, NeuroSim's post-layout energy
   factor (zeta = 1.22, Param.cpp validated = true), and whitespace: memxbar's area is the sum
   of its components, with no floorplan. Both use F = 22 nm for cells and transistors
   (NeuroSim's 40 nm featuresize is its wire width).

15. NeuroSim configurations. NeuroSim's two published runs of this network come from two
   versions of its code with different parameters, read from their Param.cpp and confirmed by
   rebuilding NeuroSim's area model from both commits of its repository (the rebuilt release
   commit reproduces the release test's six area figures to 6 digits; the later commit
   reproduces the manual's 381.907 mm^2):
   - "manual" (V1.4 manual, Table VII; repository head, commit 0e3bff1): R_on = 100 kOhm,
     read voltage 0.55 V at 22 nm, levelOutput = 32 (a 5-bit read-out); 32 rows: 11.25 TOPS/W,
     6.25 TOPS, 381.9 mm^2; 64 rows: 19.88 TOPS/W. Its chip area counts each subarray's
     bounding box (9,472 x 36,447 um^2, mostly empty space around the level-shifter and
     read-out stacks); the sum of its area parts is 104.8 mm^2 ("parts").
   - "as stated": the manual's figures with the case as the project's landscape.md records it
     (4-bit ADC, 0.5 V), R_on = 100 kOhm.
   - "release test" (Data/1.4_Release_test.csv, commit 9e6742c): R_on = 6 kOhm, 0.5 V,
     4-bit read-out; 64 rows: 20.06 TOPS/W, 6.84 TOPS, 83.07 mm^2; 128 rows: 23.94 TOPS/W,
     6.34 TOPS, 84.77 mm^2 (a sum of parts).
16. Cell energy. memxbar charges every driven cell's ohmic V^2 G while its column is
   converted. NeuroSim's multilevel sense-amplifier read-out (SARADC = false in both runs)
   counts no ohmic cell term: in RRAM parallel mode its array read energy is the word-line
   charge (SubArray.cpp; the bit-line term is commented out as "already considered in
   multilevelsenseamp"), and the sense amplifier's column power is a current-mirror fit of at
   most about 1 uW per level at 22 nm, falling logarithmically with the column resistance
   (MultilevelSenseAmp.cpp GetColumnPower), far below the column's ohmic power (25 uW for a
   10 kOhm column at 0.5 V). The "-cells" column gives memxbar's TOPS/W without its cell
   energy, the like-for-like figure for the rest of the model.

Run: ``.venv/bin/python benchmarks/neurosim_vgg8.py [out.png]`` (about 2 minutes on 2 CPU cores;
the plot of the like-for-like breakdown goes to benchmarks/neurosim_vgg8.png by default).
"""

from __future__ import annotations

import dataclasses
import os
import sys
import time
from typing import Any, TypedDict

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as memxbar sets it, before torch loads
import torch
from torch import nn

from memxbar.crossbar.cost import CostModel
from memxbar.crossbar.periphery import ADC, DAC
from memxbar.crossbar.tile import TileConfig
from memxbar.devices import presets
from memxbar.mapping import program, to_analog
from memxbar.mapping.cost import LayerInputs, capture_inputs, estimate_cost, plot_breakdown


class Conf(TypedDict):
    """One NeuroSim configuration and its published figures by rows read in parallel."""

    label: str
    adc_bits: int
    r_on: float  # ohm
    v_read: float  # V
    refs: dict[int, dict[str, float]]


# NeuroSim's published runs of this network, each with the parameters its code used
# (assumption 15): read-out bits, RRAM on-resistance, read voltage, and its figures by rows
# read in parallel. "parts": the sum of the area parts of the manual's run (NeuroSim's code
# rebuilt here, area only); its total counts each subarray's bounding box.
MANUAL: Conf = {"label": "manual", "adc_bits": 5, "r_on": 100e3, "v_read": 0.55,
          "refs": {32: {"TOPS/W": 11.25, "TOPS": 6.25, "area_mm2": 381.9, "parts_mm2": 104.8},
                   64: {"TOPS/W": 19.88}}}
ISSUE: Conf = {"label": "as stated", "adc_bits": 4, "r_on": 100e3, "v_read": 0.5,
         "refs": {32: MANUAL["refs"][32]}}
RELEASE: Conf = {"label": "release test", "adc_bits": 4, "r_on": 6e3, "v_read": 0.5,
           "refs": {64: {"TOPS/W": 20.06, "TOPS": 6.84, "area_mm2": 83.07},
                    128: {"TOPS/W": 23.94, "TOPS": 6.34, "area_mm2": 84.77}}}
# NeuroSim's pipeline duplication for VGG-8 (assumption 8); layer names of vgg8()
DUPLICATION = {"0": 16, "2": 16, "5": 4, "7": 4, "10": 1, "12": 1, "16": 1, "18": 1}


def vgg8() -> nn.Module:
    """NeuroSim's VGG-8 for CIFAR-10 (assumption 1)."""

    def conv(i: int, o: int) -> list[nn.Module]:
        return [nn.Conv2d(i, o, 3, padding=1), nn.ReLU()]

    return nn.Sequential(
        *conv(3, 128), *conv(128, 128), nn.MaxPool2d(2),
        *conv(128, 256), *conv(256, 256), nn.MaxPool2d(2),
        *conv(256, 512), *conv(512, 512), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(8192, 1024), nn.ReLU(), nn.Linear(1024, 10))


def neurosim_rram(adc_bits: int = 4, r_on: float = 100e3, v_read: float = 0.5,
                  adc_model: str = "neurosim", rows_parallel: int | None = 32) -> TileConfig:
    """The tile of assumptions 3-6 for one NeuroSim configuration."""
    dev = dataclasses.replace(presets.get("rram-falcone2025"), g_max=1 / r_on,
                              g_min=1 / r_on / 17, read_voltage=v_read, read_time=10e-9)
    return TileConfig(rows=128, cols=128, device=dev, encoding="offset", weight_bits=8,
                      bits_per_cell=1, dac=DAC(bits=9, bit_serial=True),
                      adc=ADC(bits=adc_bits, range_mode="fixed", full_scale=32.0,
                              model=adc_model),
                      rows_parallel=rows_parallel, read_noise="off")


def _ratio(value: float, ref: dict, key: str, fmt: str) -> str:
    if key not in ref:
        return f"{'-':>7}{'-':>6}"
    return f"{ref[key]:>7{fmt}}{value / ref[key]:>6.2f}"


def main(images: int = 2, path: str = "benchmarks/neurosim_vgg8.png") -> list[dict]:
    x = torch.rand(images, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    # NeuroSim's architecture (assumptions 6 and 10) with its own ADC figures, one run per
    # configuration; then the survey ADC and memxbar's out-of-the-box defaults (survey ADC,
    # sample-and-hold read-out, SRAM buffers) on the configuration as stated, for context
    neurosim: dict[str, Any] = {"sensing": "per_column", "buffer_type": "register"}
    cases: list[tuple[Conf, str, int, dict[str, Any]]] = [
        (ISSUE, "neurosim", 32, neurosim), (MANUAL, "neurosim", 32, neurosim),
        (MANUAL, "neurosim", 64, neurosim), (RELEASE, "neurosim", 64, neurosim),
        (RELEASE, "neurosim", 128, neurosim), (ISSUE, "survey", 32, neurosim),
        (ISSUE, "survey", 32, {})]
    # one programmed model and one forward pass per configuration and rows in parallel, held
    # only while its cases are costed (memory); the ADC model changes the cost only, so another
    # ADC model loads the same programmed cells
    keys = list(dict.fromkeys((c["label"], rp) for c, _, rp, _ in cases))
    rows: list[dict] = [{} for _ in cases]
    t0 = time.perf_counter()
    for key in keys:
        model: nn.Module | None = None
        cap: LayerInputs | None = None
        for i, (conf, adc_model, rp, options) in enumerate(cases):
            if (conf["label"], rp) != key:
                continue
            hw = neurosim_rram(conf["adc_bits"], conf["r_on"], conf["v_read"], adc_model, rp)
            if model is None:
                torch.manual_seed(0)
                model = program(to_analog(vgg8(), hw), generator=torch.Generator().manual_seed(0))
                cap = capture_inputs(model, x)
            costed = model
            assert cap is not None
            if model[0].tiled.hardware != hw:  # type: ignore[index]
                costed = to_analog(vgg8(), hw)
                costed.load_state_dict(model.state_dict())
            rep = estimate_cost(costed, cap, CostModel(node=22e-9, **options),
                                duplication=DUPLICATION)
            del costed
            e = rep.energy_breakdown.sum()
            rows[i] = {"conf": conf, "adc_model": adc_model, "rows_parallel": rp,
                       "arch": "NeuroSim" if options else "memxbar defaults", **rep.totals(),
                       "ref": conf["refs"].get(rp, {}), "report": rep,
                       "TOPS/W no cells": rep.ops / (e.sum() - e["cells"]) / 1e12}
        del model
    programmed = len(keys)
    print(f"VGG-8 / CIFAR-10, {images} random images; {programmed} programmed models, "
          f"{len(cases)} cost models: {time.perf_counter() - t0:.0f} s\n")
    head = (f"{'configuration':<35}{'arch.':<9}{'ADC':<9}{'rows':>4} {'TOPS/W':>7}{'NS':>7}"
            f"{'ratio':>6} {'-cells':>6}{'ratio':>6} {'mm^2':>6}{'NS':>7}{'ratio':>6}"
            f"{'parts':>7}{'ratio':>6} {'TOPS':>5}{'NS':>6}{'ratio':>6}")
    print(head)
    print("-" * len(head))
    for r in rows:
        c, ref = r["conf"], r["ref"]
        what = (f"{c['label']} ({c['adc_bits']} b, {c['r_on'] / 1e3:.0f} kOhm, "
                f"{c['v_read']} V)")
        arch = "NeuroSim" if r["arch"] == "NeuroSim" else "defaults"
        print(f"{what:<35}{arch:<9}{r['adc_model']:<9}{r['rows_parallel']:>4} "
              f"{r['TOPS_per_W']:>7.3g}" + _ratio(r["TOPS_per_W"], ref, "TOPS/W", ".4g")
              + f" {r['TOPS/W no cells']:>6.3g}"
              + (f"{r['TOPS/W no cells'] / ref['TOPS/W']:>6.2f}" if "TOPS/W" in ref
                 else f"{'-':>6}")
              + f" {r['area_mm2']:>6.4g}" + _ratio(r["area_mm2"], ref, "area_mm2", ".4g")
              + _ratio(r["area_mm2"], ref, "parts_mm2", ".4g")
              + f" {r['TOPS_pipelined']:>5.3g}" + _ratio(r["TOPS_pipelined"], ref, "TOPS",
                                                         ".3g"))
    print("\nratio = memxbar / NeuroSim (NS). manual: DNN+NeuroSim V1.4 manual, Table VII; its "
          "area counts each subarray's\nbounding box, 'parts' is the sum of its area parts "
          "(NeuroSim's code rebuilt, area only). release test: NeuroSim\nV1.4 "
          "Data/1.4_Release_test.csv. TOPS: pipelined, with weight duplication. -cells: "
          "TOPS/W without the\ncells' ohmic energy, which NeuroSim's multilevel sense-amplifier "
          "read-out (SARADC = false) does not count.")
    for r in rows:
        if r["rows_parallel"] == 32 and r["conf"] is ISSUE:
            rep = r["report"]
            e = rep.energy_breakdown.sum()
            a = rep.area_breakdown.sum()
            dens = ", ".join(f"{v:.2f}" for v in rep.layers["input_density"])
            print(f"\n{r['arch']} architecture, {r['adc_model']} ADC, {r['rows_parallel']} "
                  f"rows, configuration as stated: energy "
                  f"{rep.energy * 1e6:.4g} uJ/image = "
                  + ", ".join(f"{k} {100 * v / e.sum():.1f} %" for k, v in e.items())
                  + f"\n  area {rep.area * 1e6:.4g} mm^2 = "
                  + ", ".join(f"{k} {100 * v / a.sum():.1f} %" for k, v in a.items())
                  + f"\n  input bit density per layer (non-zero row-cycles): {dens}")
    like = rows[0]["report"]  # as stated, NeuroSim's architecture and ADC, 32 rows
    plot_breakdown(like, path)
    print(f"\nplot: {path}")
    return rows


if __name__ == "__main__":
    main(path=sys.argv[1] if len(sys.argv) > 1 else "benchmarks/neurosim_vgg8.png")
