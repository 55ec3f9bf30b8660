"""Rollout test fixtures: really exported versions, one local server shared by the package, stable traffic.

The versions (tests/rollout/models.py) are exported once per worker by the real pipeline: 1 stable
(2x + 1), 2 good (3x - 1), 3 slow (3x - 1 behind a heavy zero-weighted branch), 4 wide (incompatible
input). Every test gets its own model name in one models dir that one `python -m serving` polls
(`--model_config_file_poll_wait_seconds 1`), so every test also proves that the server accepts each
`models.config` the rollouts of the others wrote.
"""
from __future__ import annotations

import contextlib
import itertools
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

from serving.admin import modelsconfig, registry
from serving.admin.probe import version_state
from tests.conftest import REPO, free_port
from tests.support.server import ServerProcess, start_server

GROUP = "rollout"  # one xdist worker runs the package: it shares one server and one export
STABLE_X = 3.0
ANSWERS = {1: 7.0, 2: 8.0, 3: 8.0}  # y at x = 3 for versions 1 (2x + 1), 2 and 3 (3x - 1)
POLL_S = 1
_COUNT = itertools.count()  # model names are unique over the session (parametrized tests share a prefix)
PY = sys.executable


def env() -> dict[str, str]:
    out = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="", PYTHONUNBUFFERED="1")
    out["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), out.get("PYTHONPATH", "")) if p)
    out.pop("ROLLOUT_TEST_HOLD_AFTER", None)
    return out


@pytest.fixture(scope="session")
def golden(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`<dir>/tiny/{1,2,3,4}`: the four versions, exported for real (about 30 s). Version 4 (`build_wide`) is
    incompatible on purpose, so the exporter's own contract check is told to allow it."""
    models = tmp_path_factory.mktemp("rollout-golden")
    code = (
        "import sys; from pathlib import Path; from export.pipeline import export_model\n"
        "for fn in ('build_stable', 'build_good', 'build_slow', 'build_wide'):\n"
        "    export_model('tests/rollout/models.py:' + fn, name='tiny', models_dir=Path(sys.argv[1]),"
        " allow_signature_change=fn == 'build_wide', stream=open('/dev/null', 'w'))\n"
    )
    proc = subprocess.run([PY, "-c", code, str(models)], cwd=REPO, env=env(), capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, f"export failed:\n{proc.stdout}\n{proc.stderr}"
    return models / "tiny"


@dataclass
class Fleet:
    """The shared models dir and the server polling its models.config."""

    models: Path
    server: ServerProcess

    @property
    def spec(self) -> str:
        return f"{self.server.grpc_target},{self.server.host}:{self.server.rest_port}"

    @property
    def rest(self) -> str:
        return f"{self.server.host}:{self.server.rest_port}"


@contextlib.contextmanager
def serve_fleet(models: Path, golden: Path, *extra: str) -> Iterator[Fleet]:
    """A server polling `models`' models.config (seeded with one unlabelled model) every POLL_S seconds."""
    _add_model(models, golden, "seed", [1])
    modelsconfig.write_models_config(models)  # unlabelled: a label needs a loaded version first
    args = ["--port", str(free_port()), "--rest_api_port", str(free_port()), *extra,
            "--model_config_file", str(models / modelsconfig.CONFIG_FILE),
            "--model_config_file_poll_wait_seconds", str(POLL_S), "--file_system_poll_wait_seconds", str(POLL_S),
            "--tensorflow_intra_op_parallelism", "1", "--tensorflow_inter_op_parallelism", "1"]
    with start_server(args, ready_timeout=180) as server:
        yield Fleet(models, server)


@pytest.fixture(scope="package")
def fleet(tmp_path_factory: pytest.TempPathFactory, golden: Path) -> Iterator[Fleet]:
    with serve_fleet(tmp_path_factory.mktemp("rollout-models"), golden) as fleet:
        yield fleet


def _add_model(models: Path, golden: Path, name: str, versions: list[int]) -> Path:
    for v in versions:
        shutil.copytree(golden / str(v), models / name / str(v))
    return models / name


def wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


@pytest.fixture
def make_model(request: pytest.FixtureRequest, fleet: Fleet, golden: Path):
    """`make_model(versions, server_view=None)`: a fresh model for this test with version 1 labelled stable and
    loaded by the server, plus `versions`, in the shared models.config. With `server_view` (a function
    writing the server's copy of the version directories into the given dir), the config's base_path points
    there instead: the server loads other files than the ones the rollout reads (a bad sync to a volume)."""
    def make(versions: list[int], server_view=None) -> str:
        name = "m" + request.node.name.split("[")[0].removeprefix("test_").replace("_", "")[:30] + str(next(_COUNT))
        mdir = _add_model(fleet.models, golden, name, [1, *versions])
        # A new entry carries no label at first: TF Serving refuses a label on a version it has not loaded.
        view = None
        if server_view is not None:
            view = fleet.models.parent / f"{fleet.models.name}-view" / name
            server_view(view)
        _add_entry(fleet.models, name, view)
        registry.promote(fleet.models, name, 1, "stable", wait_until_loaded=lambda n, v: wait_for(
            lambda: version_state(fleet.rest, n, v).get(v) == "AVAILABLE", 120, f"{n} v{v} loaded"))
        wait_for(lambda: _stable_answers(fleet, name) == ANSWERS[1], 60, f"{name} stable -> 1 on the server")
        assert mdir.is_dir()
        return name

    return make


def _add_entry(models: Path, name: str, base_path: Path | None) -> None:
    from serving.admin.fsutil import atomic_write_text

    path = modelsconfig.update_model_entry(models, name)
    if base_path is not None:
        cfg = modelsconfig.read_models_config(path)
        next(c for c in cfg.model_config_list.config if c.name == name).base_path = str(base_path)
        atomic_write_text(path, modelsconfig.render(cfg))


def _stable_answers(fleet: Fleet, name: str) -> float | None:
    from clients import RestClient
    from clients.errors import ServingClientError

    with RestClient(fleet.rest, timeout=5) as client:
        try:
            return float(client.predict({"x": np.full((1, 1), STABLE_X, np.float32)}, model=name, label="stable")["y"].reshape(-1)[0])
        except ServingClientError:
            return None


@dataclass
class StableTraffic:
    """Clients calling `stable` over gRPC and REST in a loop (no retries, 10 s timeout), every answer kept."""

    fleet: Fleet
    name: str
    answers: list[tuple[str, float, float | None, str]] = field(default_factory=list)  # (proto, t, value, error)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)

    def start(self, per_protocol: int = 2) -> StableTraffic:
        from clients import GrpcClient, RestClient
        from clients.retry import NO_RETRY

        for i in range(per_protocol):
            for proto, make in (("grpc", lambda: GrpcClient(self.fleet.server.grpc_target, timeout=10, retry=NO_RETRY)),
                                ("rest", lambda: RestClient(self.fleet.rest, timeout=10, retry=NO_RETRY))):
                t = threading.Thread(target=self._loop, args=(f"{proto}{i}", make()), daemon=True)
                t.start()
                self._threads.append(t)
        wait_for(lambda: {a[0] for a in list(self.answers)} >= {f"{p}{i}" for p in ("grpc", "rest")
                                                                 for i in range(per_protocol)},
                 30, "every stable client answered")
        return self

    def _loop(self, who: str, client) -> None:
        with client:
            while not self._stop.is_set():
                try:
                    out = client.predict({"x": np.full((1, 1), STABLE_X, np.float32)}, model=self.name, label="stable")
                    self.answers.append((who, time.monotonic(), float(out["y"].reshape(-1)[0]), ""))
                except Exception as err:  # every failure is a finding
                    self.answers.append((who, time.monotonic(), None, f"{type(err).__name__}: {err}"))
                time.sleep(0.005)

    def stop(self) -> list[tuple[str, float, float | None, str]]:
        self._stop.set()
        for t in self._threads:
            t.join(15)
        return list(self.answers)


def assert_no_failed_request(answers, allowed_values: set[float]) -> None:
    errors = [a for a in answers if a[3]]
    assert not errors, f"{len(errors)} of {len(answers)} stable requests failed, first: {errors[:3]}"
    assert {a[2] for a in answers} <= allowed_values, {a[2] for a in answers}
    assert sum(a[0].startswith("grpc") for a in answers) > 10 and sum(a[0].startswith("rest") for a in answers) > 10


def rollout_cmd(fleet: Fleet, name: str, *extra: str, canary_s: float = 1.5) -> list[str]:
    return [PY, "-m", "serving.admin", "rollout", "--models-dir", str(fleet.models), "--name", name,
            "--server", fleet.spec, "--canary-s", str(canary_s), "--load-timeout", "90", *extra]


def run_rollout(fleet: Fleet, name: str, *extra: str, canary_s: float = 1.5,
                hold: str | None = None) -> subprocess.CompletedProcess:
    e = env()
    if hold:
        e["ROLLOUT_TEST_HOLD_AFTER"] = hold
    return subprocess.run(rollout_cmd(fleet, name, *extra, canary_s=canary_s), cwd=REPO, env=e, text=True,
                          capture_output=True, timeout=300)


def start_rollout(fleet: Fleet, name: str, *extra: str, hold: str) -> subprocess.Popen:
    """A rollout subprocess held after step `hold`; returns once it says so."""
    e = env()
    e["ROLLOUT_TEST_HOLD_AFTER"] = hold
    proc = subprocess.Popen(rollout_cmd(fleet, name, *extra), cwd=REPO, env=e, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    lines: list[str] = []
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
        if line.startswith("holding after"):
            proc.lines = lines  # type: ignore[attr-defined]
            return proc
    proc.kill()
    raise AssertionError("rollout never reached its hold point:\n" + "".join(lines))


def finish(proc: subprocess.Popen, sig: int | None = None) -> tuple[int, str]:
    if sig is not None:
        proc.send_signal(sig)
    out, _ = proc.communicate(timeout=120)
    return proc.returncode, "".join(proc.lines) + out  # type: ignore[attr-defined]


__all__ = ["ANSWERS", "GROUP", "PY", "Fleet", "StableTraffic", "assert_no_failed_request", "env", "finish",
           "run_rollout", "start_rollout", "wait_for"]
