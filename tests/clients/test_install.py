"""`pip install ./clients` on its own: a fresh venv gets the clients (import name `clients`) with numpy, grpcio
and protobuf only (no TensorFlow, no Keras, site-packages under 200 MB), and the library and the CLI it installed
call the live server over gRPC and REST. The root project's wheel still ships all three packages."""
from __future__ import annotations

import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest

from tests.clients.conftest import LIVE_GROUP
from tests.conftest import REPO

pytestmark = [pytest.mark.xdist_group(LIVE_GROUP), pytest.mark.slow]

MAX_SITE_PACKAGES = 200 * 1024 * 1024
# Distributions that must never come with the clients (what the full project drags in).
HEAVY = ("tensorflow", "tensorflow-cpu", "keras", "tf-keras", "onnx", "onnxruntime", "tf2onnx", "scikit-learn",
         "tensorflow-serving-api")

SCRIPT = textwrap.dedent("""
    import json, subprocess, sys
    import numpy as np
    import clients
    from clients import GrpcClient, RestClient

    grpc_target, rest_target, x_path = sys.argv[1:4]
    x = np.array([[1.0], [2.0], [5.0]], np.float32)
    np.save(x_path, x)
    report = {"file": clients.__file__}
    for client in (GrpcClient(grpc_target), RestClient(rest_target)):
        with client:
            report[client.protocol] = client.predict(x, model="half_plus_two")["y"].tolist()
    for protocol, target in (("grpc", grpc_target), ("rest", rest_target)):
        cli = subprocess.run([sys.executable, "-m", "clients", "predict", "--target", target, "--protocol",
                              protocol, "--model", "half_plus_two", "--input", x_path],
                             capture_output=True, text=True, timeout=60)
        report["cli_" + protocol] = [cli.returncode, cli.stdout.strip(), cli.stderr.strip()]
    report["tf_loaded"] = sorted(m for m in sys.modules if m.split(".")[0] in ("tensorflow", "keras"))
    print("REPORT " + json.dumps(report))
""")


def _pip(*args: str, into: Path | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    """This environment's pip, acting on the venv `into` when given (`pip --python`: the fresh venv needs no
    pip of its own, which saves the seconds ensurepip takes)."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PIP_REQUIRE_VIRTUALENV")}
    target = ["--python", str(into / "bin" / "python")] if into is not None else []
    proc = subprocess.run([sys.executable, "-m", "pip", "--disable-pip-version-check", *target, *args], env=env,
                          capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"pip {' '.join(args)}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


def _build_wheel(source: Path, out: Path) -> Path:
    """A wheel of `source` built with this environment's setuptools (no build isolation, no download)."""
    _pip("wheel", "-q", "--no-build-isolation", "--no-deps", str(source), "-w", str(out))
    (wheel,) = out.glob("*.whl")
    return wheel


def _site_packages(venv: Path) -> Path:
    (path,) = venv.glob("lib/python3*/site-packages")
    return path


def _tree_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


@pytest.fixture(scope="module")
def clients_venv(tmp_path_factory) -> Path:
    """A fresh venv with only the clients wheel and its dependencies (the versions this repo pins, so pip's
    cache usually has them; PyPI otherwise)."""
    root = tmp_path_factory.mktemp("clients-install")
    # Build from a copy: an in-place build leaves clients/build/ and an .egg-info in the source tree.
    source = root / "src" / "clients"
    shutil.copytree(REPO / "clients", source, ignore=shutil.ignore_patterns("__pycache__", "build", "*.egg-info"))
    wheel = _build_wheel(source, root / "wheel")
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    pins = root / "constraints.txt"
    pins.write_text("".join(f"{d}=={importlib.metadata.version(d)}\n" for d in ("numpy", "grpcio", "protobuf")))
    _pip("install", "-q", "-c", str(pins), str(wheel), into=venv)
    return venv


def test_clients_wheel_contents(clients_venv):
    """The installed distribution has the descriptor set, py.typed, the license, and needs only the three."""
    site = _site_packages(clients_venv)
    assert (site / "clients" / "_proto" / "tfserving.desc").stat().st_size > 10_000
    assert (site / "clients" / "py.typed").is_file()
    (dist,) = site.glob("keras_serving_clients-*.dist-info")
    meta = (dist / "METADATA").read_text()
    assert "License-Expression: Apache-2.0" in meta and (dist / "licenses" / "LICENSE").is_file()
    requires = sorted(line.split(":", 1)[1].split(">")[0].split(";")[0].strip()
                      for line in meta.splitlines() if line.startswith("Requires-Dist:") and "extra ==" not in line)
    assert requires == ["grpcio", "numpy", "protobuf"]


def test_no_tensorflow_and_small(clients_venv):
    site = _site_packages(clients_venv)
    listed = json.loads(_pip("list", "--format=json", into=clients_venv).stdout)
    names = {d["name"].lower().replace("_", "-") for d in listed}
    assert not names & set(HEAVY), sorted(names & set(HEAVY))
    assert {"keras-serving-clients", "numpy", "grpcio", "protobuf"} <= names
    size = _tree_bytes(site)
    assert size < MAX_SITE_PACKAGES, f"site-packages is {size / 2**20:.0f} MiB"


def test_installed_library_and_cli_call_the_server(clients_venv, live, tmp_path):
    """Run from outside the repo with no PYTHONPATH, so `import clients` can only find the installed copy."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run([str(clients_venv / "bin" / "python"), "-c", SCRIPT, live.grpc_target, live.rest_target,
                           str(tmp_path / "x.npy")], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(next(x for x in proc.stdout.splitlines() if x.startswith("REPORT "))[len("REPORT "):])
    assert Path(report["file"]).is_relative_to(_site_packages(clients_venv))
    want = [[2.5], [3.0], [4.5]]
    assert report["grpc"] == want and report["rest"] == want
    for protocol in ("grpc", "rest"):
        code, out, err = report["cli_" + protocol]
        assert code == 0 and json.loads(out) == {"y": want}, (protocol, err)
    assert report["tf_loaded"] == []


def test_root_wheel_still_ships_every_package(tmp_path):
    """`make install` / `pip install .` keeps installing export, serving and clients (with their data files),
    and never an in-place build folder of `pip install ./clients`."""
    source = tmp_path / "src"
    files = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=REPO,
                           capture_output=True, text=True, check=True).stdout.split()
    for name in files:
        src = REPO / name
        if src.is_file() and not name.startswith("tests/"):
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, source / name)
    (source / "clients" / "build" / "lib" / "clients").mkdir(parents=True)  # what an in-place clients build leaves
    (source / "clients" / "build" / "lib" / "clients" / "__init__.py").write_text("")
    wheel = _build_wheel(source, tmp_path / "wheel")
    names = set(zipfile.ZipFile(wheel).namelist())
    for required in ("clients/_proto/tfserving.desc", "clients/py.typed", "serving/py.typed", "export/py.typed",
                     "serving/__main__.py", "export/__main__.py", "clients/cli.py"):
        assert required in names, required
    assert not any("/build/" in n for n in names)
    (dist_info,) = {n.split("/")[0] for n in names if n.split("/")[0].endswith(".dist-info")}
    meta = zipfile.ZipFile(wheel).read(f"{dist_info}/METADATA").decode()
    assert "License-Expression: Apache-2.0" in meta
