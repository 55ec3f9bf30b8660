"""The rollout tests' `fleet`, served by `--num_workers=2`: the same helpers (`make_model`, `StableTraffic`)
resolve `fleet` to this one for the tests in this folder."""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from serving.admin import modelsconfig
from tests.conftest import free_port
from tests.support.server import start_server

from ..conftest import POLL_S, Fleet, _add_model


@pytest.fixture(scope="package")
def fleet(tmp_path_factory: pytest.TempPathFactory, golden: Path) -> Iterator[Fleet]:
    models = tmp_path_factory.mktemp("rollout-workers-models")
    _add_model(models, golden, "seed", [1])
    modelsconfig.write_models_config(models)
    args = ["--port", str(free_port()), "--rest_api_port", str(free_port()), "--num_workers=2",
            "--model_config_file", str(models / modelsconfig.CONFIG_FILE),
            "--model_config_file_poll_wait_seconds", str(POLL_S), "--file_system_poll_wait_seconds", str(POLL_S),
            "--tensorflow_intra_op_parallelism", "1", "--tensorflow_inter_op_parallelism", "1"]
    with start_server(args, ready_timeout=180) as server:
        server.wait_until(lambda: "(2 workers)" in server.log(), 180, "serving on both workers")
        yield Fleet(models, server)
