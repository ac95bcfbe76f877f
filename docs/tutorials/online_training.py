"""Tutorial: online training on a measured device (docs/tutorials/online-training.md).

A device fitted to the packaged HfO2 RRAM pulse trains of Gong et al. (2018), an MLP on
scikit-learn's digits trained from scratch on the arrays: every weight update is a train of
device pulses (mixed-precision algorithm, Nandakumar et al. 2020), so the device's asymmetry,
step size and pulse-to-pulse noise act during training. Then the same with aihwkit's exp-step
fit of the same data (preset ``rram-gong2018-es``). About 40 s on two idle cores; the ready-made
study ``studies/online_training.toml`` runs six devices at full length.
"""

import torch
from torch import nn

from memxbar.crossbar.periphery import ADC, DAC
from memxbar.crossbar.tile import TileConfig
from memxbar.devices import measured, presets
from memxbar.devices.base import Device
from memxbar.mapping import MappingConfig, program, to_analog
from memxbar.studies import workloads
from memxbar.training.digital import evaluate
from memxbar.training.online import AnalogSGD, train_online


def train_on_chip(device: Device, epochs: int = 3) -> None:
    """Train an MLP from scratch on ``device``'s arrays and print accuracy and write cost."""
    train_set, test_set = workloads.digits(seed=0)
    train_loader, test_loader = workloads.loaders(train_set, test_set, batch_size=64, seed=0)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))
    # ideal periphery (adc_bits = dac_bits = 0) and wires: only the device's update response
    hardware = TileConfig(rows=128, cols=128, device=device, adc=ADC(bits=0), dac=DAC(bits=0))
    mapping = MappingConfig(weight_clip="fixed", clip_value=0.5)  # fixed weight range +-0.5
    analog = to_analog(model, hardware, mapping=mapping)
    gen = torch.Generator().manual_seed(0)
    program(analog, generator=gen)  # the random initial weights, written once
    opt = AnalogSGD(analog, lr=0.2, algorithm="mixed", threshold=32.0, generator=gen)
    try:
        losses = train_online(analog, train_loader, opt, epochs=epochs, lr_decay=0.9)
    finally:
        opt.remove_hooks()
    cost = opt.cost()
    print(f"  loss per epoch: {', '.join(f'{x:.3f}' for x in losses)}")
    print(f"  test accuracy {evaluate(analog.eval(), test_loader):.3f}; {cost.update_pulses} "
          f"update pulses, at most {cost.max_cell_pulses} on one cell, write energy "
          f"{cost.energy * 1e6:.3g} uJ")


if __name__ == "__main__":
    data = measured.read_gong2018()  # your file: measured.read_pulse_file(path, units=...)
    report = measured.fit_report(data.potentiation, data.depression, units=data.units,
                                 g_min=8e-6, g_max=9e-5,  # normalised data: give the range
                                 source="HfO2 RRAM, Gong et al. 2018")
    print(report.summary())
    print("fitted from the measurements:")
    train_on_chip(report.device)
    print("aihwkit's exp-step fit of the same data (rram-gong2018-es):")
    train_on_chip(presets.get("rram-gong2018-es"))
