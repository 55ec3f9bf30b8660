"""The rollout tests' `fleet`, served by `--num_workers=2`: the same helpers (`make_model`, `StableTraffic`)
resolve `fleet` to this one for the tests in this folder."""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ..conftest import Fleet, serve_fleet


@pytest.fixture(scope="package")
def fleet(tmp_path_factory: pytest.TempPathFactory, golden: Path) -> Iterator[Fleet]:
    with serve_fleet(tmp_path_factory.mktemp("rollout-workers-models"), golden, "--num_workers=2") as fleet:
        fleet.server.wait_until(lambda: "(2 workers)" in fleet.server.log(), 180, "serving on both workers")
        yield fleet
