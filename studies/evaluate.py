"""One design of a study, evaluated: train (or reuse) the workload's model, map it onto the
design's hardware, program it, read it at every evaluation time, and cost it.

This is the default objective of :func:`memxbar.studies.runner.run_study`.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..crossbar.periphery import ADC, DAC
from ..crossbar.tile import TileConfig
from ..mapping import MappingConfig, drift, estimate_cost, program, to_analog
from ..training.digital import evaluate, train
from . import workloads
from .spec import INPUT_SHAPES, StudySpec, accuracy_key, metric_key

COMPENSATION = {"none": "none", "global": "global", "per_column": "column"}
CALIBRATION_SAMPLES = 256  # training inputs used to set ADC ranges
COST_SAMPLES = 32  # test inputs whose real activations the energy model uses


def hardware_config(spec: StudySpec, params: dict[str, Any]) -> TileConfig:
    """The tile configuration of a design's parameters."""
    fs = params.get("adc_full_scale")
    adc = ADC(bits=int(params["adc_bits"]), range_mode=params["adc_range"],
              full_scale=fs if params["adc_range"] == "fixed" else None)
    dac = DAC(bits=int(params["dac_bits"]), bit_serial=bool(params["dac_bit_serial"]))
    return TileConfig(rows=int(params["tile_rows"]), cols=int(params["tile_cols"]),
                      device=spec.build_device(params["device"]), encoding=params["encoding"],
                      layout=params["layout"], weight_bits=int(params["weight_bits"]),
                      bits_per_cell=int(params["bits_per_cell"]),
                      r_row=float(params["wire_resistance"]),
                      r_col=float(params["wire_resistance"]), dac=dac, adc=adc,
                      read_noise=params["read_noise"])


def mapping_config(params: dict[str, Any]) -> MappingConfig:
    """How weights and inputs are scaled, and the drift compensation of a design."""
    return MappingConfig(compensation=COMPENSATION[params["drift_compensation"]])


def load_workload(spec: StudySpec) -> tuple[Any, Any, tuple[int, ...]]:
    """(train set, test set, input shape) of the study's workload."""
    w = spec.workload
    train_set, test_set = workloads.load(w.dataset, folder=w.data_dir, seed=spec.study.seed,
                                         limit=w.limit)
    return train_set, test_set, INPUT_SHAPES[w.dataset]


def _build(spec: StudySpec, shape: tuple[int, ...]) -> nn.Module:
    w = spec.workload
    torch.manual_seed(spec.study.seed)
    return workloads.build_model(w.model, shape, workloads.N_CLASSES[w.dataset],
                                 **w.model_options)


def trained_model(spec: StudySpec, train_set: Any, shape: tuple[int, ...],
                  cache_dir: Path | None) -> nn.Module:
    """The digitally trained model of the workload, from the cache when another trial of the
    study trained it already (the file is written atomically, so parallel workers are safe)."""
    model = _build(spec, shape)
    path = None
    if cache_dir is not None:
        path = Path(cache_dir) / f"model-{spec.workload_key('digital')}.pt"
        if path.exists():
            model.load_state_dict(torch.load(path, weights_only=True))
            return model.eval()
    t = spec.workload.training
    loader, _ = workloads.loaders(train_set, train_set, t.batch_size, seed=spec.study.seed)
    train(model, loader, epochs=t.epochs, lr=t.lr, optimizer=t.optimizer,
          weight_decay=t.weight_decay, generator=spec.study.seed)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        os.close(fd)
        torch.save(model.state_dict(), tmp)
        os.replace(tmp, path)
    return model.eval()


def evaluate_design(spec: StudySpec, params: dict[str, Any], *, cache_dir: Path | None = None,
                    seed: int = 0) -> dict[str, Any]:
    """Accuracy at every evaluation time (mean over ``evaluation.repeats`` programmings),
    energy per inference, latency, area and programming energy of one design.

    Returns metric key -> value (keys from :func:`~memxbar.studies.spec.metric_key`) and a
    ``breakdown`` entry (energy per component and per layer, J per inference).
    """
    train_set, test_set, shape = load_workload(spec)
    recipe = params["recipe"]
    if recipe != "digital":
        raise ValueError(f"workload.training.recipe = {recipe!r} is not available in this "
                         "version; allowed: digital")
    model = trained_model(spec, train_set, shape, cache_dir)
    hw = hardware_config(spec, params)
    calib = train_set.tensors[0][:CALIBRATION_SAMPLES]
    _, test_loader = workloads.loaders(train_set, test_set, 256, seed=seed)
    times = spec.evaluation.times
    acc = np.zeros((spec.evaluation.repeats, len(times)))
    analog = to_analog(model, hw, mapping=mapping_config(params))
    for r in range(spec.evaluation.repeats):
        gen = torch.Generator().manual_seed(seed * 1000 + r)
        program(analog, generator=gen, calibration=calib)
        for i, t in enumerate(times):
            drift(analog, t, generator=gen)
            acc[r, i] = evaluate(analog, test_loader)
    drift(analog, 0.0)
    report = estimate_cost(analog, test_set.tensors[0][:COST_SAMPLES])
    totals = report.totals()
    out: dict[str, Any] = {accuracy_key(t): float(acc[:, i].mean()) for i, t in enumerate(times)}
    out[metric_key("energy_per_inference")] = totals["energy_J"]
    out[metric_key("latency")] = totals["latency_s"]
    out[metric_key("area")] = totals["area_m2"]
    out[metric_key("programming_energy")] = totals["program_energy_J"]
    out["accuracy_digital"] = float(evaluate(model, test_loader))
    out["breakdown"] = {
        "energy_per_inference": {k: float(v) for k, v in
                                 report.energy_breakdown.sum(axis=0).items()},
        "layers": {str(k): float(v) for k, v in report.energy_breakdown.sum(axis=1).items()},
        "accuracy_std": {accuracy_key(t): float(acc[:, i].std()) for i, t in enumerate(times)},
    }
    return out
