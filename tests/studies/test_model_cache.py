"""Workers share the trained-model cache under a lock: on an empty cache, two workers that need
the same digital model at once train it once; the other waits and loads the file."""

from __future__ import annotations

import multiprocessing
import time
from pathlib import Path

import torch

from memxbar.studies import evaluate
from memxbar.studies import workloads as W
from memxbar.studies.spec import load_spec

STUDY = """[study]
name = "cache"
output = "{out}"
[workload]
model_options = {{ hidden = [16] }}
[workload.training]
epochs = 1
[hardware]
device = "ideal"
[evaluation]
times = [1]
[[objectives]]
metric = "area"
"""


def _worker(path: str, log: str) -> None:
    torch.set_num_threads(1)
    real = evaluate.train

    def counting_train(*args, **kwargs):  # type: ignore[no-untyped-def]
        with open(log, "a") as fh:
            fh.write("train\n")
        time.sleep(1.0)  # widen the window in which a second worker would also train
        return real(*args, **kwargs)

    evaluate.train = counting_train
    spec = load_spec(path)
    train_set, _ = W.digits(seed=0)
    evaluate.trained_model(spec, train_set, (1, 8, 8), Path(spec.output_dir) / "cache")


def test_two_workers_on_an_empty_cache_train_once(tmp_path: Path) -> None:
    path = tmp_path / "s.toml"
    path.write_text(STUDY.format(out=tmp_path / "out"))
    log = tmp_path / "trainings.log"
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_worker, args=(str(path), str(log))) for _ in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
    assert [p.exitcode for p in procs] == [0, 0]
    assert log.read_text().count("train") == 1
    assert len(list((tmp_path / "out" / "cache").glob("model-*.pt"))) == 1
