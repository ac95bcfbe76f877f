"""memxbar's cost model on DNN+NeuroSim V1.4's published VGG-8 / CIFAR-10 case, beside NeuroSim.

NeuroSim's figures (DNN+NeuroSim V1.4 manual, Table VII, as recorded in the project's
reference/landscape.md): 22 nm, RRAM 128 x 128 arrays, 8-bit weights and activations, 1 bit per
cell, 4-bit ADC, 32 rows read in parallel: 11.25 TOPS/W, 6.25 TOPS, 381.9 mm^2; 64 rows in
parallel: 19.88 TOPS/W. This script builds the same network and hardware in memxbar, runs it on
random CIFAR-sized images, and prints memxbar's TOPS/W and area beside NeuroSim's with the
ratio memxbar / NeuroSim. No constant was tuned to approach NeuroSim's numbers: every cost
parameter is memxbar's default (memxbar.crossbar.cost.CostModel) except the ones the case fixes
(node, rows in parallel, ADC model).

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
3. Device: memxbar preset "rram-falcone2025" (1T1R RRAM) with its conductance window set to
   NeuroSim's RRAM (Param.cpp: R_on = 100 kOhm, on/off = 17, i.e. g_max = 10 uS,
   g_min = 0.588 uS) and NeuroSim's read conditions (0.5 V, 10 ns read pulse). Its programming
   noise changes the conductances by about 1 %; write pulse 1.5 V / 50 ns / 10 pJ from the
   preset (only the programming cost uses it). Cell area 48 F^2 (1T1R, NeuroSim's 4F x 12F).
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
   row group of 32 rows (4 groups per full tile). Two ADC energy/area models are shown:
   "neurosim" = NeuroSim's SAR-ADC power fit at 22 nm, HP roadmap, (0.7213 b + 3.3041) uW x
   (b + 1) ns = 31 fJ at 4 bits, area from its transistor count (the like-for-like row:
   NeuroSim's own circuit figures; NeuroSim's default read-out for this case may be its
   multilevel sense amplifier, Param.cpp SARADC = false, which memxbar does not model);
   "survey" = memxbar's default, median Walden FOM of single-channel SAR ADCs with ENOB 4-8
   published since 2010 in Murmann's survey (25 fJ/step -> 0.40 pJ at 4 bits) and median area
   per conversion step (63 um^2 -> 0.001 mm^2 at 4 bits).
7. Technology 22 nm: digital energies of Horowitz (ISSCC 2014, 45 nm) scaled linearly with the
   node, areas in F^2 with F = 22 nm; SRAM bit 280 F^2; adder + register 52 transistors/bit.
8. Latency: tiles of a layer in parallel, one MVM per output position, layers in sequence;
   throughput pipelined across layers. No weight duplication (NeuroSim speeds conv layers up by
   duplicating weights, speedUpDegree = 8), so TOPS are shown for information only.
9. Not modelled by memxbar (and included in NeuroSim): leakage, interconnect between tiles
   (H-tree/bus), decoders, switch matrices and column multiplexers, register-file buffers at
   PE/tile/global level, pooling and activation units, weight duplication; so memxbar's area is
   expected to be lower than NeuroSim's. memxbar's cell energy is the full ohmic power
   V_read^2 G over the whole 10 ns read pulse for every driven cell.

Run: ``.venv/bin/python benchmarks/neurosim_vgg8.py`` (about 3 minutes on 2 CPU cores).
"""

from __future__ import annotations

import dataclasses
import time

import torch
from torch import nn

from memxbar.crossbar.cost import CostModel
from memxbar.crossbar.periphery import ADC, DAC
from memxbar.crossbar.tile import TileConfig
from memxbar.devices import presets
from memxbar.mapping import program, to_analog
from memxbar.mapping.cost import capture_inputs, estimate_cost

NEUROSIM = {32: {"TOPS/W": 11.25, "area_mm2": 381.9, "TOPS": 6.25}, 64: {"TOPS/W": 19.88}}


def vgg8() -> nn.Module:
    """NeuroSim's VGG-8 for CIFAR-10 (assumption 1)."""

    def conv(i: int, o: int) -> list[nn.Module]:
        return [nn.Conv2d(i, o, 3, padding=1), nn.ReLU()]

    return nn.Sequential(
        *conv(3, 128), *conv(128, 128), nn.MaxPool2d(2),
        *conv(128, 256), *conv(256, 256), nn.MaxPool2d(2),
        *conv(256, 512), *conv(512, 512), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(8192, 1024), nn.ReLU(), nn.Linear(1024, 10))


def neurosim_rram() -> TileConfig:
    """The tile of assumptions 3-6."""
    dev = dataclasses.replace(presets.get("rram-falcone2025"), g_max=10e-6, g_min=10e-6 / 17,
                              read_voltage=0.5, read_time=10e-9)
    return TileConfig(rows=128, cols=128, device=dev, encoding="offset", weight_bits=8,
                      bits_per_cell=1, dac=DAC(bits=9, bit_serial=True),
                      adc=ADC(bits=4, range_mode="fixed", full_scale=32.0), read_noise="off")


def main(images: int = 2) -> list[dict]:
    torch.manual_seed(0)
    model = to_analog(vgg8(), neurosim_rram())
    t0 = time.perf_counter()
    program(model, generator=torch.Generator().manual_seed(0))
    t_prog = time.perf_counter() - t0
    x = torch.rand(images, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    t0 = time.perf_counter()
    captured = capture_inputs(model, x)
    t_run = time.perf_counter() - t0
    rows = []
    t0 = time.perf_counter()
    for adc_model in ("neurosim", "survey"):
        for rp in (32, 64):
            cm = CostModel(node=22e-9, rows_parallel=rp, adc_model=adc_model)
            rep = estimate_cost(model, captured, cm)
            t = rep.totals()
            ref = NEUROSIM[rp]
            rows.append({"adc_model": adc_model, "rows_parallel": rp, **t, "ref": ref,
                         "report": rep})
    t_cost = time.perf_counter() - t0
    print(f"VGG-8 / CIFAR-10, {images} random images; programming {t_prog:.0f} s, analog run "
          f"{t_run:.0f} s, costing (4 cost models) {t_cost:.0f} s\n")
    head = (f"{'ADC model':<10}{'rows':>5} {'memxbar TOPS/W':>15}{'NeuroSim':>10}{'ratio':>8}"
            f" {'memxbar mm^2':>13}{'NeuroSim':>10}{'ratio':>8} {'TOPS':>7}{'NeuroSim':>9}")
    print(head)
    print("-" * len(head))
    for r in rows:
        ref = r["ref"]
        a_ref = ref.get("area_mm2")
        area = (f"{a_ref:>10.4g}{r['area_mm2'] / a_ref:>8.3f}" if a_ref
                else f"{'-':>10}{'-':>8}")
        tops = f"{ref['TOPS']:>9.3g}" if "TOPS" in ref else f"{'-':>9}"
        print(f"{r['adc_model']:<10}{r['rows_parallel']:>5} {r['TOPS_per_W']:>15.3g}"
              f"{ref['TOPS/W']:>10.4g}{r['TOPS_per_W'] / ref['TOPS/W']:>8.2f}"
              f" {r['area_mm2']:>13.4g}{area} {r['TOPS_pipelined']:>7.3g}{tops}")
    print("\nratio = memxbar / NeuroSim. TOPS: memxbar pipelined across layers, no weight "
          "duplication.")
    for r in rows:
        if r["rows_parallel"] == 32:
            rep = r["report"]
            e = rep.energy_breakdown.sum()
            a = rep.area_breakdown.sum()
            dens = ", ".join(f"{v:.2f}" for v in rep.layers["input_density"])
            print(f"\n{r['adc_model']} ADC, 32 rows: energy {rep.energy * 1e6:.4g} uJ/image = "
                  + ", ".join(f"{k} {100 * v / e.sum():.1f} %" for k, v in e.items())
                  + f"\n  area {rep.area * 1e6:.4g} mm^2 = "
                  + ", ".join(f"{k} {100 * v / a.sum():.1f} %" for k, v in a.items())
                  + f"\n  input bit density per layer (non-zero row-cycles): {dens}")
    return rows


if __name__ == "__main__":
    main()
