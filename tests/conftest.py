"""Suite-wide set-up: SPICE tests skip (or, in CI, fail) when ngspice is missing; shared
assertions live in tests/helpers.py (``from helpers import assert_quantized_close``)."""

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # tests/helpers.py, for every test folder

REQUIRE_NGSPICE = "MEMXBAR_REQUIRE_NGSPICE"  # set to 1 by .ci/run, where ngspice is installed


def _ngspice_missing() -> str | None:
    """Why ngspice cannot be used here, or None when it can."""
    from memxbar.crossbar.spice import SpiceUnavailable, check_ngspice

    try:
        check_ngspice()
    except SpiceUnavailable as e:
        return str(e)
    return None


@pytest.fixture(autouse=True)
def _ngspice_or_skip(request):
    """Tests marked ``spice`` need ngspice: skipped with the reason when it is missing, or
    failed when ``MEMXBAR_REQUIRE_NGSPICE=1`` says it must be there (CI)."""
    if request.node.get_closest_marker("spice") is None:
        return
    reason = _ngspice_missing()
    if reason is None:
        return
    if os.environ.get(REQUIRE_NGSPICE) == "1":
        pytest.fail(f"{REQUIRE_NGSPICE}=1 but {reason}", pytrace=False)
    pytest.skip(reason)
