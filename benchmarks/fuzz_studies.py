"""Fuzzed study files: mutations of the ready-made studies (``studies/*.toml``), each loaded as
``memxbar study run`` would load it, classified as a clean error (a one-line ``ConfigError``),
accepted, a traceback (any other exception), a hang (past the per-case timeout) or a crash (the
process died).

Run: ``python benchmarks/fuzz_studies.py --n 5000 [--seed 0] [--timeout 20]``. Each case runs
in a forked child with a memory cap, so a hang or an allocation cannot take the run down; the
counts table is Markdown. ``tests/studies/test_fuzz_spec.py`` runs a few hundred cases in CI
in-process with the same generator.

Mutations (one to three per case, seeded): a leaf replaced by a value of another type, a huge
or negative number, NaN or infinity; a key deleted; an unknown key added; a table nested
thousands deep; a bad path (``~nouser``, the study file itself, a file as a folder, an
unreadable or malformed measured-pulse file); a hardware field set to a random value, choice
list or range; the TOML text cut or garbled.
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing as mp
import os
import random
import resource
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import tomllib

ROOT = Path(__file__).resolve().parents[1]
STUDIES = sorted((ROOT / "studies").glob("*.toml"))
PULSES = ROOT / "devices" / "data" / "rram_hfo2_gong2018_pulses.csv"
KINDS = ("error", "accepted", "traceback", "hang", "crash")

VALUES: list[Any] = [
    "text", "", "x" * 5000, -1, 0, 1, 2, 3, 7, 64, 4097, 2**31, 2**40, 10**18, 2**63 - 1,
    -(2**63), 10**30, -1e308, 1e308, 1e-320, 0.5, -0.0, math.nan, math.inf, -math.inf, True,
    False, [], [1, 2], ["a", 1], {}, {"low": 0, "high": 10}, {"low": 10, "high": 0},
    {"low": 1, "high": 2**40}, {"low": 0.0, "high": 1.0, "step": 1e-9}, {"choices": []},
    {"choices": [1, 1]}, {"choices": [0, 1, 2, 3]}, {"choices": ["a", 2]}, {"unknown": 1},
    "~nosuchuser_fuzz/x", "/", "/dev/null", "/proc/self/mem", "1 year", "-1 s", "1e400 s",
    "differential", "offset", "arrays", "column", "per_column", "fixed", "neurosim", "cuda",
]
HARDWARE_VALUES: dict[str, list[Any]] = {
    "tile_rows": [1, 2, 3, 4096, 4097, 2**20, 2**40, {"low": 1, "high": 4096},
                  {"choices": [1, 2, 3]}],
    "tile_cols": [1, 2, 3, 5, 4096, 2**40],
    "weight_bits": [0, 1, 2, 4, 8, 24, 25, {"low": 0, "high": 8}],
    "bits_per_cell": [0, 1, 2, 3, 7, 8, 24, {"choices": [0, 1, 2, 3]}],
    "adc_bits": [0, 1, 2, 8, 24, 25, {"low": 0, "high": 4}],
    "dac_bits": [0, 1, 2, 8, {"choices": [0, 1]}],
    "dac_bit_serial": [True, False, 1],
    "encoding": ["differential", "offset", {"choices": ["differential", "offset"]}],
    "layout": ["columns", "arrays", {"choices": ["columns", "arrays"]}],
    "adc_range": ["fixed", "calibrated", "per_column", {"choices": ["fixed", "calibrated"]}],
    "adc_full_scale": [0.0, 1e-300, 4.0, 1e9, -1.0],
    "wire_resistance": [0.0, 1.0, 1e6, 1e300, {"low": 0.0, "high": 10.0, "log": True}],
    "rows_parallel": [1, 32, 4097, 0],
    "drift_compensation": ["none", "global", "column", "per_column"],
    "input_scaling": ["dynamic", "fixed", "calibrated"],
    "adc_model": ["survey", "neurosim", "flash"],
    "device": ["ideal", "pcm-joshi2020", "nope", "mine"],
}
BAD_CSV = {
    "text": "up_pulse_response,down_pulse_response\n" + "a,b\n" * 40,
    "nan": "up_pulse_response,down_pulse_response\n" + "nan,1\n" * 40,
    "short": "up_pulse_response,down_pulse_response\n1,2\n",
    "constant": "up_pulse_response,down_pulse_response\n" + "0.5,0.5\n" * 60,
    "empty": "",
    "header": "a,b\n1,2\n",
}


# --------------------------------------------------------------------------- TOML out


def _key(k: str) -> str:
    return k if k and all(c.isalnum() or c in "_-" for c in k) else json.dumps(k)


class Raw(str):
    """TOML text inserted as is (a value nested thousands deep, written without recursion)."""


def _value(v: Any) -> str:
    if isinstance(v, Raw):
        return str(v)
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf") if math.isinf(v) \
            else repr(v)
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, list):
        return "[" + ", ".join(_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{_key(str(k))} = {_value(x)}" for k, x in v.items()) + "}"
    raise TypeError(type(v))


def to_toml(data: dict[str, Any]) -> str:
    """``data`` as TOML: one line ``key = <inline value>`` per top-level key."""
    return "".join(f"{_key(k)} = {_value(v)}\n" for k, v in data.items())


# --------------------------------------------------------------------------- mutations


def _nodes(data: Any, path: tuple = ()) -> list[tuple[tuple, Any]]:
    """Every (path, value) under ``data``, tables and lists included (iteratively)."""
    out, stack = [], [(path, data)]
    while stack:
        p, node = stack.pop()
        out.append((p, node))
        if isinstance(node, dict):
            stack += [(p + (k,), v) for k, v in node.items()]
        elif isinstance(node, list):
            stack += [(p + (i,), v) for i, v in enumerate(node)]
    return out


def _set(data: Any, path: tuple, value: Any) -> None:
    for p in path[:-1]:
        data = data[p]
    data[path[-1]] = value


def _table(data: dict[str, Any], key: str) -> dict[str, Any]:
    """``data[key]`` as a table (made anew when a mutation left something else there)."""
    if not isinstance(data.get(key), dict):
        data[key] = {}
    return data[key]


def _mutate(rng: random.Random, data: dict[str, Any], folder: Path, study_file: Path) -> None:
    kind = rng.choice(("leaf", "leaf", "delete", "unknown", "nest", "path", "hardware",
                       "hardware", "hardware", "size", "measured"))
    nodes = [(p, v) for p, v in _nodes(data) if p]
    if kind == "leaf" and nodes:
        path, _ = rng.choice(nodes)
        _set(data, path, rng.choice(VALUES))
    elif kind == "delete" and nodes:
        path, _ = rng.choice(nodes)
        parent = data
        for p in path[:-1]:
            parent = parent[p]
        del parent[path[-1]]
    elif kind == "unknown":
        tables = [v for _, v in _nodes(data) if isinstance(v, dict)]
        rng.choice(tables)[rng.choice(("extra", "adc_bit", "Device", "trials2"))] = 1
    elif kind == "nest":
        depth, table = rng.choice((3, 9, 100, 3000)), rng.random() < 0.5
        deep = Raw(("{a = " if table else "[") * depth + rng.choice(("1", '"x"', "[]"))
                   + ("}" if table else "]") * depth)
        tables = [v for _, v in _nodes(data) if isinstance(v, dict)]
        rng.choice(tables)[rng.choice(("model_options", "hardware", "x"))] = deep
    elif kind == "path":
        where = rng.choice((("study", "output"), ("study", "storage"),
                            ("workload", "data_dir")))
        value = rng.choice(("~nosuchuser_fuzz/x", str(study_file), study_file.name,
                            str(study_file / "sub"), "/proc/forbidden", "", "\x00",
                            "sqlite:///" + str(study_file), "sqlite://", "nope://x",
                            "a" * 5000))
        _table(data, where[0])[where[1]] = value
    elif kind == "hardware":
        name = rng.choice(list(HARDWARE_VALUES))
        _table(data, "hardware")[name] = rng.choice(HARDWARE_VALUES[name] + VALUES[:12])
    elif kind == "size":
        choice = rng.randrange(4)
        if choice == 0:
            _table(data, "study")["trials"] = rng.choice((10**18, 10**6, 0, -1))
        elif choice == 1:
            _table(data, "workload")["model_options"] = {
                "hidden": rng.choice(([10**8], [4096] * 100, [0], [60000] * 3, "64"))}
        elif choice == 2:
            _table(data, "evaluation")["times"] = rng.choice(
                (list(range(1000)), ["1e30 y"], [1e300], []))
        else:
            _table(data, "workload")["model"] = "resnet"
            data["workload"]["model_options"] = {"width": rng.choice((16, 10**6)),
                                                 "blocks": rng.choice((1, 10**4))}
    elif kind == "measured":
        name = rng.choice(list(BAD_CSV) + ["good"])
        csv = folder / f"{name}.csv"
        csv.write_text(PULSES.read_text() if name == "good" else BAD_CSV[name])
        hw = _table(data, "hardware")
        hw["measured"] = {"mine": {"file": str(csv), "g_min": rng.choice((1e-6, -1.0)),
                                   "g_max": rng.choice((2e-5, 1e-7))}}
        hw["device"] = "mine"


def make_case(seed: int, folder: Path) -> tuple[Path, str]:
    """Write case ``seed`` into ``folder``: returns (study file, name of its base study)."""
    rng = random.Random(seed)
    base = rng.choice(STUDIES)
    path = folder / f"case{seed}.toml"
    if rng.random() < 0.05:  # garbled or cut text
        text = base.read_text()
        cut = rng.randrange(len(text))
        text = text[:cut] + rng.choice(("", "\x00", "[[[", "= =", "\ufffd")) + \
            text[cut + rng.randrange(3):]
        path.write_text(text)
        return path, base.stem
    data = tomllib.loads(base.read_text())
    for table in data.get("hardware", {}).get("measured", {}).values():
        table["file"] = str((base.parent / table["file"]).resolve())  # the case is elsewhere
    for _ in range(rng.choice((1, 1, 2, 3))):
        _mutate(rng, data, folder, path)
    path.write_text(to_toml(data))
    return path, base.stem


# --------------------------------------------------------------------------- running


def load_case(path: Path) -> tuple[str, str]:
    """Load one study file: ("error" | "accepted" | "traceback", detail)."""
    from memxbar.errors import ConfigError
    from memxbar.studies.spec import load_spec

    try:
        load_spec(path)
    except ConfigError as e:
        text = str(e)
        if "\n" in text:
            return "traceback", f"ConfigError with a line break: {text[:200]!r}"
        return "error", text[:200]
    except Exception as e:  # noqa: BLE001  (what the fuzzer looks for)
        return "traceback", f"{type(e).__name__}: {str(e)[:200]}"
    return "accepted", ""


def _child(path: Path, conn: Any, mem_bytes: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    resource.setrlimit(resource.RLIMIT_AS, (mem_bytes, hard))
    os.chdir(path.parent)
    conn.send(load_case(path))
    conn.close()


def run_isolated(path: Path, timeout: float, mem_bytes: int) -> tuple[str, str]:
    """:func:`load_case` in a forked child with a memory cap and a timeout."""
    ctx = mp.get_context("fork")
    parent, child = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child, args=(path, child, mem_bytes))
    proc.start()
    child.close()
    if parent.poll(timeout):
        try:
            result = parent.recv()
        except EOFError:
            result = None
        proc.join(5)
        if result is not None:
            return result
        return "crash", f"exit code {proc.exitcode}"
    proc.kill()
    proc.join()
    return "hang", f"more than {timeout:g} s"


def _vm_bytes() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000, help="cases (default 1000)")
    parser.add_argument("--seed", type=int, default=0, help="first case's seed (default 0)")
    parser.add_argument("--timeout", type=float, default=20.0, help="seconds per case")
    parser.add_argument("--memory", type=float, default=3.0,
                        help="GB each case may allocate beyond the loaded library (default 3)")
    parser.add_argument("--show", type=int, default=10, help="tracebacks/hangs to list")
    args = parser.parse_args()
    import memxbar.studies.spec  # noqa: F401  (loaded once; every child is forked from here)

    mem = _vm_bytes() + int(args.memory * 2**30)
    counts: Counter[str] = Counter()
    per_base: dict[str, Counter[str]] = {}
    bad: list[str] = []
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        for seed in range(args.seed, args.seed + args.n):
            folder = Path(tmp) / f"c{seed}"
            folder.mkdir()
            path, base = make_case(seed, folder)
            kind, detail = run_isolated(path, args.timeout, mem)
            counts[kind] += 1
            per_base.setdefault(base, Counter())[kind] += 1
            if kind in ("traceback", "hang", "crash"):
                bad.append(f"case {seed} ({base}): {kind}: {detail}")
    elapsed = time.perf_counter() - start
    print(f"fuzzed study files: {args.n} cases from seed {args.seed} "
          f"({elapsed:.0f} s, timeout {args.timeout:g} s per case)\n")
    print("| base study | " + " | ".join(KINDS) + " |")
    print("|---|" + "---:|" * len(KINDS))
    for base, c in sorted(per_base.items()):
        print(f"| {base} | " + " | ".join(str(c[k]) for k in KINDS) + " |")
    print("| **all** | " + " | ".join(f"**{counts[k]}**" for k in KINDS) + " |")
    for line in bad[: args.show]:
        print(line)
    sys.exit(1 if any(counts[k] for k in ("traceback", "hang", "crash")) else 0)


if __name__ == "__main__":
    main()
