"""The ONNX Runtime backend against the TensorFlow backend on a real export, and its warmup replay."""
from __future__ import annotations

import shutil
import struct

import numpy as np
import pytest

from serving.backends import LoadError, load_backend
from serving.backends.onnxruntime import OnnxRuntimeBackend
from serving.backends.warmup import WARMUP_FILE, masked_crc32c, read_warmup_requests

pytestmark = pytest.mark.xdist_group("perf-digits")


@pytest.fixture(scope="module")
def backends(digits_version):
    ort_backend = load_backend("onnxruntime", digits_version)
    tf_backend = load_backend("tensorflow", digits_version)
    yield ort_backend, tf_backend
    ort_backend.unload()
    tf_backend.unload()


def test_signature_matches_the_savedmodel(backends):
    ort_backend, tf_backend = backends
    ours, theirs = ort_backend.signatures["serving_default"], tf_backend.signatures["serving_default"]
    assert list(ort_backend.signatures) == ["serving_default"]
    assert ours.method_name == theirs.method_name == "tensorflow/serving/predict"
    assert ours.inputs == theirs.inputs  # names, dtypes and shapes, e.g. pixels float32[None, 64]
    assert ours.outputs == theirs.outputs


@pytest.mark.parametrize("batch", [1, 7, 64])
def test_predict_matches_tensorflow_within_parity_tolerance(backends, batch):
    ort_backend, tf_backend = backends
    x = np.random.default_rng(batch).random((batch, 64), dtype=np.float32)
    got = ort_backend.predict("serving_default", {"pixels": x})
    want = tf_backend.predict("serving_default", {"pixels": x})
    assert set(got) == set(want) == {"probs"}
    assert got["probs"].dtype == np.float32 and got["probs"].shape == (batch, 10)
    np.testing.assert_allclose(got["probs"], want["probs"], rtol=1e-5, atol=1e-5)


def test_recorded_parity_inputs_reproduce_the_keras_reference(backends, digits_version):
    ort_backend, _ = backends
    inputs = dict(np.load(digits_version / "assets.extra" / "parity_inputs.npz"))
    reference = dict(np.load(digits_version / "assets.extra" / "parity_reference.npz"))
    got = ort_backend.predict("serving_default", inputs)
    np.testing.assert_allclose(got["probs"], reference["probs"], rtol=1e-5, atol=1e-5)


def test_output_filter_returns_only_the_named_outputs(backends):
    ort_backend, _ = backends
    got = ort_backend.predict("serving_default", {"pixels": np.zeros((2, 64), np.float32)}, ["probs"])
    assert list(got) == ["probs"] and got["probs"].shape == (2, 10)


def test_session_uses_this_processes_share_of_the_cores_without_spinning(backends, digits_version):
    from serving.backends.base import usable_cores

    options = backends[0].session.get_session_options()
    assert options.intra_op_num_threads == usable_cores() and options.inter_op_num_threads == 1
    assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0"
    shared = OnnxRuntimeBackend.load(digits_version, num_workers=usable_cores() * 2)  # more workers than cores
    assert shared.session.get_session_options().intra_op_num_threads == 1
    if usable_cores() >= 2:
        half = OnnxRuntimeBackend.load(digits_version, num_workers=2)
        assert half.session.get_session_options().intra_op_num_threads == usable_cores() // 2


def test_thread_flags_override_the_defaults(digits_version):
    import onnxruntime as ort

    backend = OnnxRuntimeBackend.load(digits_version, intra_op_threads=2)
    assert backend.session.get_session_options().intra_op_num_threads == 2
    assert backend.session.get_session_options().execution_mode == ort.ExecutionMode.ORT_SEQUENTIAL
    parallel = OnnxRuntimeBackend.load(digits_version, inter_op_threads=2).session.get_session_options()
    assert parallel.inter_op_num_threads == 2 and parallel.execution_mode == ort.ExecutionMode.ORT_PARALLEL


def test_warmup_replays_every_record_the_exporter_wrote(backends, digits_version):
    from export.savedmodel import read_warmup  # TensorFlow's own TFRecord reader

    logs = read_warmup(digits_version)
    ours = read_warmup_requests(digits_version)
    assert len(ours) == len(logs) > 0
    assert backends[0].warmup() == len(logs)
    import tensorflow as tf

    for req, log in zip(ours, logs, strict=True):
        assert req.signature_name == "serving_default"
        want = tf.make_ndarray(log.predict_log.request.inputs["pixels"])
        np.testing.assert_array_equal(req.inputs["pixels"], want)


def _copy_version(src, tmp_path):
    dst = tmp_path / "1"
    shutil.copytree(src, dst)
    return dst


def test_a_corrupt_warmup_file_fails_the_load(digits_version, tmp_path):
    version = _copy_version(digits_version, tmp_path)
    path = version / WARMUP_FILE
    data = bytearray(path.read_bytes())
    data[20] ^= 0xFF  # inside the first record's payload: its data checksum no longer matches
    path.write_bytes(bytes(data))
    backend = OnnxRuntimeBackend.load(version)
    with pytest.raises(LoadError, match="corrupt data checksum at record 0"):
        backend.warmup()


def test_a_non_predict_warmup_record_fails_the_load(digits_version, tmp_path):
    from clients.messages import PredictionLog

    version = _copy_version(digits_version, tmp_path)
    log = PredictionLog()
    log.regress_log.request.model_spec.name = "digits"
    payload = log.SerializeToString()
    header = struct.pack("<Q", len(payload))
    record = header + struct.pack("<I", masked_crc32c(header)) + payload + struct.pack("<I", masked_crc32c(payload))
    (version / WARMUP_FILE).write_bytes(record)
    with pytest.raises(LoadError, match="regress_log record; only predict_log"):
        OnnxRuntimeBackend.load(version).warmup()


def test_no_warmup_file_means_nothing_to_replay(digits_version, tmp_path):
    version = _copy_version(digits_version, tmp_path)
    (version / WARMUP_FILE).unlink()
    assert OnnxRuntimeBackend.load(version).warmup() == 0


def test_a_version_without_model_onnx_is_not_found(tmp_path):
    (tmp_path / "1").mkdir()
    with pytest.raises(LoadError) as info:
        load_backend("onnxruntime", tmp_path / "1")
    assert info.value.code == "NOT_FOUND" and "model.onnx not found" in str(info.value)


def test_an_invalid_graph_is_a_load_error(tmp_path):
    (tmp_path / "model.onnx").write_bytes(b"not an onnx graph")
    with pytest.raises(LoadError, match="Failed to load"):
        load_backend("onnxruntime", tmp_path)


def test_batching_keeps_the_tensorflow_metadata_byte_for_byte(backends):
    from serving.batching import make_backend_wrapper
    from serving.signature_defs import signature_def_map

    tf_backend = backends[1]
    wrapped = make_backend_wrapper(None)(tf_backend)
    try:
        assert signature_def_map(wrapped).SerializeToString(deterministic=True) == \
            signature_def_map(tf_backend).SerializeToString(deterministic=True)
        x = np.random.default_rng(4).random((3, 64), dtype=np.float32)
        np.testing.assert_array_equal(wrapped.predict("serving_default", {"pixels": x})["probs"],
                                      tf_backend.predict("serving_default", {"pixels": x})["probs"])
    finally:
        wrapped._scheduler.stop()  # leave the shared TF backend loaded for the other tests
