"""One design of a study, evaluated: train (or reuse) the workload's model, map it onto the
design's hardware, program it, read it at every evaluation time, and cost it.

This is the default objective of :func:`memxbar.studies.runner.run_study`.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import TensorDataset

from memxbar.crossbar.cost import CostModel
from memxbar.mapping import apply_read_disturb, drift, estimate_cost, program, to_analog
from memxbar.studies import workloads
from memxbar.studies.files import file_lock
from memxbar.studies.spec import (
    StudySpec,
    accuracy_key,
    check_torch_device,
    metric_key,
)
from memxbar.training.digital import evaluate, train
from memxbar.training.hwa import hardware_aware_train
from memxbar.training.online import AnalogSGD, train_online

CALIBRATION_SAMPLES = 256  # training inputs used to set ADC ranges
COST_SAMPLES = 32  # test inputs whose real activations the energy model uses
ONLINE_WEIGHT_BOUND = 0.5  # fixed weight scale of online training from scratch (headroom)
ONLINE_MAPPING = {"weight_clip": "fixed", "clip_value": ONLINE_WEIGHT_BOUND}


def load_workload(spec: StudySpec) -> tuple[Any, Any, tuple[int, ...]]:
    """(train set, test set, input shape) of the study's workload, on the study's
    ``torch_device`` (refused when this machine does not have it)."""
    check_torch_device(spec.torch_device)
    train_set, test_set = spec.load_data()
    if spec.torch_device != "cpu":
        train_set, test_set = (TensorDataset(*(t.to(spec.torch_device) for t in s.tensors))
                               for s in (train_set, test_set))
    return train_set, test_set, spec.input_shape()


def _generator(spec: StudySpec, seed: int) -> torch.Generator:
    """A generator on the study's torch device, seeded."""
    return torch.Generator(device=spec.torch_device).manual_seed(seed)


def _stream(seed: int, repeat: int, what: str) -> int:
    """The seed of one stream of draws of a repeat (``what``: "disturb", or a read time in
    seconds): each time's reads, and the disturbing inferences, draw from their own stream,
    so a value at one time does not depend on which other times a study reads."""
    digest = hashlib.sha256(f"{seed}:{repeat}:{what}".encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


def _build(spec: StudySpec, shape: tuple[int, ...]) -> nn.Module:
    torch.manual_seed(spec.study.seed)
    return spec.build_model().to(spec.torch_device)


def trained_model(spec: StudySpec, train_set: Any, shape: tuple[int, ...],
                  cache_dir: Path | None) -> nn.Module:
    """The digitally trained model of the workload, from the cache when another trial of the
    study trained it already. Workers share the cache under a lock: the first trains and
    writes the file (atomically), the others wait for it and load it."""
    if cache_dir is None:
        return _train_digital(spec, train_set, shape, None)
    path = Path(cache_dir) / f"model-{spec.workload_key('digital')}.pt"
    with file_lock(path.with_suffix(".lock")):
        return _train_digital(spec, train_set, shape, path)


def _train_digital(spec: StudySpec, train_set: Any, shape: tuple[int, ...],
                   path: Path | None) -> nn.Module:
    model = _build(spec, shape)
    if path is not None and path.exists():
        model.load_state_dict(torch.load(path, weights_only=True,
                                         map_location=spec.torch_device))
        return model.eval()
    t = spec.workload.training
    loader, _ = workloads.loaders(train_set, train_set, t.batch_size, seed=spec.study.seed)
    train(model, loader, epochs=t.epochs, lr=t.lr, optimizer=t.optimizer,
          weight_decay=t.weight_decay, generator=spec.study.seed, device=spec.torch_device)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        os.close(fd)
        torch.save(model.state_dict(), tmp)
        os.replace(tmp, path)
    return model.eval()


def _online(spec: StudySpec, params: dict[str, Any], model: nn.Module, train_set: Any,
            calib: torch.Tensor, gen: torch.Generator) -> tuple[nn.Module, dict[str, float]]:
    """Train ``model`` from scratch on the arrays (pulse updates); returns it and the cost."""
    t = spec.workload.training
    hw, mapping = spec.build_hardware(params, mapping=ONLINE_MAPPING)
    analog = to_analog(model, hw, mapping=mapping)
    program(analog, generator=gen, calibration=calib)
    opt = AnalogSGD(analog, t.lr, algorithm=t.algorithm, mode=t.update_mode,
                    bl=t.pulse_train_length, threshold=t.pulse_threshold,
                    recalibrate_every=t.adc_recalibrate_every, generator=gen)
    loader, _ = workloads.loaders(train_set, train_set, t.batch_size, seed=spec.study.seed)
    try:
        train_online(analog, loader, opt, epochs=t.epochs, lr_decay=t.lr_decay)
    finally:
        opt.remove_hooks()
    cost = opt.cost()
    return analog.eval(), {"training_pulses": float(cost.pulses),
                           "training_energy": cost.energy,
                           "max_cell_pulses": float(cost.max_cell_pulses)}


def evaluate_design(spec: StudySpec, params: dict[str, Any], *, cache_dir: Path | None = None,
                    seed: int = 0) -> dict[str, Any]:
    """Accuracy at every evaluation time (mean over ``evaluation.repeats``), energy per
    inference, latency, area and programming energy of one design.

    Each repeat programs the arrays again with its own generator (a new programming-noise
    draw) and reads them at each time with a stream of that time's own (new read-noise
    draws, the same whichever other times are read); repeat ``r`` of every
    design uses the same seed (common random numbers). The result also holds
    ``test_examples`` (the test-set size) and, in ``breakdown``, ``accuracy_std`` (the standard
    deviation over repeats, ddof 1; 0 with one repeat) and ``accuracy_repeats`` (every
    repeat's accuracy).

    Recipes: "digital" trains once per workload (cached) and programs the weights;
    "hardware-aware" trains with the design's device noise read at the time of the first
    accuracy objective (else the last evaluation time) and programs the result; "online"
    trains from scratch on the arrays with pulse updates (the trained chip is then read at
    every time; repeats redraw only read noise) and adds ``training_pulses``,
    ``training_energy`` (J) and ``max_cell_pulses``. ``evaluation.inferences`` > 0: after
    programming (online: once, after training) the arrays answer that many inferences before
    the accuracy reads (read disturb, counted on the cost inputs), and the result adds
    ``disturbed_fraction`` (cells changed, mean over repeats). Energy, latency and area are
    costed once, on the first repeat read at :func:`cost_time`. Returns metric key -> value
    (keys from :func:`~memxbar.studies.spec.metric_key`) and a ``breakdown`` entry (energy per
    component and per layer, J per inference).
    """
    train_set, test_set, shape = load_workload(spec)
    calib = train_set.tensors[0][:CALIBRATION_SAMPLES]
    _, test_loader = workloads.loaders(train_set, test_set, 256, seed=seed)
    times = spec.evaluation.times
    t_cost = cost_time(spec)
    acc = np.zeros((spec.evaluation.repeats, len(times)))
    analog, reference, extra = _design_model(spec, params, train_set, shape, calib, cache_dir,
                                             seed)
    disturbed = []
    report = None
    for r in range(spec.evaluation.repeats):
        changed = _prepare_repeat(spec, analog, params["recipe"], r, seed, calib, test_set)
        if changed is not None:
            disturbed.append(changed)
        for i, t_eval in enumerate(times):
            drift(analog, t_eval, generator=_generator(spec, _stream(seed, r, repr(t_eval))))
            acc[r, i] = evaluate(analog, test_loader)
            if r == 0 and t_eval == t_cost:  # costed as read when its accuracy is judged
                report = estimate_cost(analog, test_set.tensors[0][:COST_SAMPLES],
                                       spec.cost_model())
    assert report is not None  # t_cost is one of the evaluation times
    totals = report.totals()
    out: dict[str, Any] = {accuracy_key(t): float(acc[:, i].mean()) for i, t in enumerate(times)}
    out[metric_key("energy_per_inference")] = totals["energy_J"]
    out[metric_key("latency")] = totals["latency_s"]
    out[metric_key("area")] = totals["area_m2"]
    out[metric_key("programming_energy")] = totals["program_energy_J"]
    if reference is not None:
        out["accuracy_digital"] = float(evaluate(reference, test_loader))
    out.update(extra)
    if disturbed:
        out["disturbed_fraction"] = float(np.mean(disturbed))
    out["breakdown"] = {
        "energy_per_inference": {k: float(v) for k, v in
                                 report.energy_breakdown.sum(axis=0).items()},
        "layers": {str(k): float(v) for k, v in report.energy_breakdown.sum(axis=1).items()},
        "accuracy_std": {accuracy_key(t): float(acc[:, i].std(ddof=1)) if len(acc) > 1 else 0.0
                         for i, t in enumerate(times)},
        "accuracy_repeats": {accuracy_key(t): [float(a) for a in acc[:, i]]
                             for i, t in enumerate(times)},
    }
    out["test_examples"] = float(len(test_set))
    return out


def design_cost(spec: StudySpec, params: dict[str, Any], *, cache_dir: Path | None = None,
                seed: int = 0, plot: str | None = None,
                cost_model: CostModel | None = None) -> Any:
    """Print (and with ``plot``, draw) the cost report of one design of a study: the chip that
    :func:`evaluate_design` costs (its recipe, the first repeat's programming and read
    disturb, read at :func:`cost_time`), on the same test inputs, with ``cost_model``
    (default: the study's ``[cost]`` table)."""
    from memxbar.mapping.cost import cost

    train_set, test_set, shape = load_workload(spec)
    calib = train_set.tensors[0][:CALIBRATION_SAMPLES]
    analog, _, _ = _design_model(spec, params, train_set, shape, calib, cache_dir, seed)
    _prepare_repeat(spec, analog, params["recipe"], 0, seed, calib, test_set)
    t_cost = cost_time(spec)
    drift(analog, t_cost, generator=_generator(spec, _stream(seed, 0, repr(t_cost))))
    return cost(analog, test_set.tensors[0][:COST_SAMPLES], cost_model or spec.cost_model(),
                plot=plot)


def cost_time(spec: StudySpec) -> float:
    """Time (s) after programming at which a design is costed and hardware-aware training
    reads its weights: that of the first accuracy objective, else the last evaluation time.
    The cells' read energy follows their conductance, which drifts (PCM: about half after a
    year), so the energy is paired with the accuracy it is judged by."""
    return float(next((o.time for o in spec.objectives
                       if o.metric == "accuracy" and o.time is not None),
                      spec.evaluation.times[-1]))


def _design_model(spec: StudySpec, params: dict[str, Any], train_set: Any,
                  shape: tuple[int, ...], calib: torch.Tensor, cache_dir: Path | None,
                  seed: int) -> tuple[nn.Module, nn.Module | None, dict[str, float]]:
    """``(analog model, digital reference, extra metrics)`` of one design by its recipe: the
    digital model trained once per workload (cached) or with hardware-aware training, on the
    design's arrays and not yet programmed; online: trained on the arrays from scratch (no
    digital reference; ``extra`` holds the training cost)."""
    recipe = params["recipe"]
    if recipe == "online":
        analog, extra = _online(spec, params, _build(spec, shape), train_set, calib,
                                _generator(spec, seed))
        return analog, None, extra
    t = spec.workload.training
    hw, mapping = spec.build_hardware(params)
    if recipe == "hardware-aware":
        model = _build(spec, shape)
        loader, _ = workloads.loaders(train_set, train_set, t.batch_size, seed=spec.study.seed)
        hardware_aware_train(model, hw, loader, epochs=t.epochs, lr=t.lr,
                             t_inference=cost_time(spec), noise_scale=t.noise_scale,
                             mapping=mapping, optimizer=t.optimizer,
                             weight_decay=t.weight_decay, generator=spec.study.seed,
                             device=spec.torch_device)
        model.eval()
    else:
        model = trained_model(spec, train_set, shape, cache_dir)
    return to_analog(model, hw, mapping=mapping), model, {}


def _prepare_repeat(spec: StudySpec, analog: nn.Module, recipe: str, r: int, seed: int,
                    calib: torch.Tensor, test_set: Any) -> float | None:
    """Program repeat ``r`` (online: the trained chip stays) and answer the
    ``evaluation.inferences`` before the accuracy reads (read disturb; online: once);
    returns the fraction of cells the reads changed, None without inferences."""
    if recipe != "online":
        program(analog, generator=_generator(spec, seed * 1000 + r), calibration=calib)
    if not spec.evaluation.inferences or (recipe == "online" and r > 0):
        return None
    disturb = apply_read_disturb(analog, spec.evaluation.inferences,
                                 test_set.tensors[0][:COST_SAMPLES],
                                 generator=_generator(spec, _stream(seed, r, "disturb")))
    return float(disturb.changed_fraction)
