"""Tutorial: the cost model against NeuroSim (docs/tutorials/neurosim.md).

NeuroSim's VGG-8 / CIFAR-10 case (DNN+NeuroSim V1.4 manual, Table VII: 22 nm, RRAM 128 x 128,
8-bit weights on 1-bit cells, 32 rows read at once) built in memxbar with the network, tile and
architecture of ``benchmarks/neurosim_vgg8.py`` (its docstring lists every assumption), on one
random image, one configuration; the full comparison (seven cases, NeuroSim's three published
runs, the survey ADC model beside NeuroSim's) is ``python benchmarks/neurosim_vgg8.py``. About a
minute on two cores and 11 GB of memory (the programmed cells of 8 bit slices of VGG-8).
"""

import sys
from pathlib import Path

import torch

from memxbar.crossbar.cost import CostModel
from memxbar.mapping import program, to_analog
from memxbar.mapping.cost import capture_inputs, estimate_cost, plot_breakdown

ROOT = Path(__file__).resolve().parents[2]  # the repository: the benchmark script lives there
sys.path.insert(0, str(ROOT / "benchmarks"))
from neurosim_vgg8 import DUPLICATION, MANUAL, neurosim_rram, vgg8  # noqa: E402

if __name__ == "__main__":
    conf, rows = MANUAL, 32  # NeuroSim's manual run: 5-bit read-out, 100 kOhm, 0.55 V
    neurosim = MANUAL["refs"][rows]
    image = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(1))

    # The tile (TileConfig): offset encoding, 8 bit slices of 1 bit, bit-serial 8-bit inputs,
    # 32 rows per conversion, NeuroSim's SAR ADC figures. The architecture (CostModel): 22 nm,
    # current-mode sensing through the column mux, register-file buffers (NeuroSim Param.cpp).
    hardware = neurosim_rram(conf["adc_bits"], conf["r_on"], conf["v_read"], "neurosim", rows)
    architecture = CostModel(node=22e-9, sensing="per_column", buffer_type="register")
    torch.manual_seed(0)
    model = program(to_analog(vgg8(), hardware), generator=torch.Generator().manual_seed(0))
    inputs = capture_inputs(model, image)  # every analog layer's input, as simulated
    report = estimate_cost(model, inputs, architecture, duplication=DUPLICATION)
    print(report.summary())

    t = report.totals()
    print(f"\n{'':<24}{'memxbar':>10}{'NeuroSim':>10}{'ratio':>8}")
    for label, ours, theirs in (("TOPS/W", t["TOPS_per_W"], neurosim["TOPS/W"]),
                                ("TOPS (pipelined)", t["TOPS_pipelined"], neurosim["TOPS"]),
                                ("area, sum of parts mm^2", t["area_mm2"],
                                 neurosim["parts_mm2"])):
        print(f"{label:<24}{ours:>10.4g}{theirs:>10.4g}{ours / theirs:>8.2f}")

    plot_breakdown({"NeuroSim SAR ADC": report}, "vgg8_breakdown.png")
