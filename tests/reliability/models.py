"""Model trees for the reliability tests: version directories built in tmp dirs from known-answer models.

Two families, both with an answer that tells the versions apart:

* TF Serving's own TF1 fixtures (``half_plus_two``: y = 0.5x + 2, ``half_plus_three``: y = 0.5x + 3), copied
  version by version into a scratch base path (never into the repo);
* tiny ONNX graphs ``y = slope * x + intercept`` with a fixed ``[N, 1]`` float input, written with
  ``onnx.helper``, for the ``onnxruntime`` platform (they load in milliseconds, and refuse wrong shapes).

Installing a version is atomic by default (copy into a dot-directory the server ignores, then ``rename``), as
the exporter does; ``copy_slowly`` installs it file by file in place, as a careless ``cp -r`` would.
"""
from __future__ import annotations

import math
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path

ONNX_FILE = "model.onnx"


def write_onnx_affine(version_dir: Path, slope: float, intercept: float) -> Path:
    """Write ``version_dir/model.onnx`` computing ``y = slope * x + intercept`` on ``x: float32[N, 1]``."""
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Mul", ["x", "slope"], ["scaled"]), helper.make_node("Add", ["scaled", "intercept"], ["y"])],
        "affine",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 1])],
        initializer=[helper.make_tensor("slope", TensorProto.FLOAT, [], [slope]),
                     helper.make_tensor("intercept", TensorProto.FLOAT, [], [intercept])],
    )
    return _save_onnx(graph, version_dir)


def slow_rounds(seconds: float, size: int = 2048) -> int:
    """How many ``size`` x ``size`` float32 matrix products take ``seconds`` on this machine now, with every
    core (numpy's BLAS, as ONNX Runtime's intra-op pool does by default): the slow model's duration must not
    depend on the machine's speed or core count, or a timeout test turns into a 200 on a faster box."""
    import numpy as np

    m = np.ones((size, size), np.float32)
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        m @ m
        best = min(best, time.perf_counter() - start)
    return max(2, min(64, math.ceil(seconds / best)))


def write_onnx_slow(version_dir: Path, size: int = 2048, seconds: float = 1.0, rounds: int | None = None) -> Path:
    """``model.onnx`` answering ``y = 0.5x + 2`` on ``x: float32[1, 1]`` after ``rounds`` square matrix
    products of ``size`` (``Expand`` of the input, so nothing is constant-folded; a ``Tanh`` after each keeps the
    values finite however many rounds): by default as many as take
    ~``seconds`` on this machine, for timeouts and in-flight requests during shutdown."""
    from onnx import TensorProto, helper

    rounds = rounds or slow_rounds(seconds, size)
    nodes = [helper.make_node("Expand", ["x", "square"], ["m0"])]
    for i in range(rounds):
        nodes.append(helper.make_node("MatMul", [f"m{i}", f"m{i}"], [f"p{i}"]))
        nodes.append(helper.make_node("Tanh", [f"p{i}"], [f"m{i + 1}"]))  # bounded: no inf * 0 = NaN
    nodes += [
        helper.make_node("ReduceSum", [f"m{rounds}"], ["total"], keepdims=0),
        helper.make_node("Mul", ["total", "zero"], ["nothing"]),
        helper.make_node("Mul", ["x", "slope"], ["scaled"]),
        helper.make_node("Add", ["scaled", "intercept"], ["shifted"]),
        helper.make_node("Add", ["shifted", "nothing"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes, "slow_affine",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 1])],
        initializer=[helper.make_tensor("square", TensorProto.INT64, [2], [size, size]),
                     helper.make_tensor("zero", TensorProto.FLOAT, [], [0.0]),
                     helper.make_tensor("slope", TensorProto.FLOAT, [], [0.5]),
                     helper.make_tensor("intercept", TensorProto.FLOAT, [], [2.0])],
    )
    return _save_onnx(graph, version_dir)


def install_atomically(build: Callable[[Path], object], base_path: Path, version: int) -> Path:
    """Build a version in ``base_path/.staging-<v>`` (ignored by the server) and rename it into place."""
    staging = base_path / f".staging-{version}-{os.getpid()}"
    if staging.exists():
        shutil.rmtree(staging)
    build(staging)
    target = base_path / str(version)
    os.rename(staging, target)
    return target


def copy_tree(src: Path) -> Callable[[Path], object]:
    """A ``build`` callable for ``install_atomically`` that copies an existing version directory."""
    return lambda dst: shutil.copytree(src, dst)


def copy_slowly(src: Path, dst: Path, pause_s: float) -> None:
    """Copy ``src`` into ``dst`` one file at a time, pausing between files (a half-copied version on disk)."""
    dst.mkdir(parents=True)
    for path in sorted(src.rglob("*")):
        rel = path.relative_to(src)
        if path.is_dir():
            (dst / rel).mkdir(parents=True, exist_ok=True)
            continue
        (dst / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, dst / rel)
        time.sleep(pause_s)


def fixture_version(testdata: Path, fixture: str) -> Path:
    """The single (or first) version directory of one of TF Serving's fixture models."""
    versions = sorted(p for p in (testdata / fixture).iterdir() if p.name.isdigit())
    return versions[0]


def write_models_config(path: Path, entries: list[dict]) -> Path:
    """Write a ``ModelServerConfig`` text proto; each entry: name, base_path, [platform, policy, labels]."""
    blocks = []
    for e in entries:
        lines = [f'    name: "{e["name"]}"', f'    base_path: "{e["base_path"]}"',
                 f'    model_platform: "{e.get("platform", "tensorflow")}"']
        if e.get("policy"):
            lines.append(f"    model_version_policy {{ {e['policy']} }}")
        for label, version in e.get("labels", {}).items():
            lines.append(f'    version_labels {{ key: "{label}" value: {version} }}')
        blocks.append("  config {\n" + "\n".join(lines) + "\n  }")
    path.write_text("model_config_list {\n" + "\n".join(blocks) + "\n}\n")
    return path


def _save_onnx(graph, version_dir: Path) -> Path:
    """Wrap ``graph`` in an opset-17 model, check it, and write it as the version's ``model.onnx``."""
    import onnx
    from onnx import helper

    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="reliability-tests")
    model.ir_version = 8
    onnx.checker.check_model(model)
    version_dir.mkdir(parents=True, exist_ok=True)
    path = version_dir / ONNX_FILE
    path.write_bytes(model.SerializeToString())
    return path
