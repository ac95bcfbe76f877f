"""A seeded API fuzz in CI: every bad or odd call ends in a clean ConfigError or a finite
success (never another exception, a non-finite result, a hang or a crash).

The cases and the runner are benchmarks/fuzz_api.py (which also runs thousands of them); here
30 cases per family on 2 worker processes, each case under a 60 s timeout.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import fuzz_api  # noqa: E402

CASES, SEED = 30 * len(fuzz_api.FAMILIES), 20261203  # 30 cases per family


def test_bad_api_calls_end_in_a_clean_error_or_a_finite_result():
    results = fuzz_api.fuzz(CASES, SEED, workers=2, timeout=60.0)
    assert len(results) == CASES
    bad = [r for r in results if r["outcome"] not in ("clean", "ok")]
    report = "\n".join(f"[{r['outcome']}] case {r['index']} ({r['family']}): {r['detail']}"
                       for r in bad[:10])
    assert not bad, f"{len(bad)} of {CASES} cases:\n{report}\n{fuzz_api.summary(results)}"
    outcomes = {r["outcome"] for r in results}
    families = {r["family"] for r in results if r["outcome"] == "ok"}
    assert outcomes == {"clean", "ok"} and families == set(fuzz_api.FAMILIES)  # both kinds


def test_a_case_is_rebuilt_from_its_seed_and_index():
    a, b = fuzz_api.run_case(SEED, 5), fuzz_api.run_case(SEED, 5)
    assert a == b and a["family"] == fuzz_api._family(5)
