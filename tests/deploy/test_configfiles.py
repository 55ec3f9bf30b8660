"""serving.configfiles: TF Serving's batching/monitoring/SSL files, parsed with exact copies of its protos."""
from __future__ import annotations

import subprocess
import sys

import pytest
from google.protobuf import descriptor_pool

from serving import configfiles
from serving.configfiles import ConfigFileError
from serving.protos import message_class
from tests.conftest import REPO
from tests.support.certs import make_pki


def write(tmp_path, text: str, name: str = "x.config"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_tfserving_batching_fixture_parses_with_its_values(testdata):
    params = configfiles.load_batching_parameters(testdata / "batching_config.txt")
    assert (params.max_batch_size, params.batch_timeout_micros, params.max_enqueued_batches,
            params.num_batch_threads) == (128, 0, 1000000, 8)
    # omitted fields take TF Serving's defaults
    assert params.thread_pool_name == "batch_threads"
    assert params.enable_large_batch_splitting is False
    assert params.max_execution_batch_size == 128
    assert params.allowed_batch_sizes == () and params.pad_variable_length_inputs is False


def test_tfserving_monitoring_fixture_parses(testdata):
    cfg = configfiles.load_monitoring_config(testdata / "monitoring_config.txt")
    assert cfg.prometheus_config.enable is True
    assert cfg.prometheus_config.path == "/monitoring/prometheus/metrics"


def test_batching_every_field_round_trips(tmp_path):
    path = write(tmp_path, """
        max_batch_size { value: 64 } batch_timeout_micros { value: 2000 } max_enqueued_batches { value: 4 }
        num_batch_threads { value: 2 } thread_pool_name { value: "pool" }
        enable_large_batch_splitting { value: true } max_execution_batch_size { value: 32 }
        allowed_batch_sizes: 8 allowed_batch_sizes: 16 allowed_batch_sizes: 32
        pad_variable_length_inputs: true
    """)
    p = configfiles.load_batching_parameters(path)
    assert p == configfiles.BatchingParameters(64, 2000, 4, 2, "pool", True, 32, (8, 16, 32), True)


def test_empty_batching_file_means_all_defaults(tmp_path):
    p = configfiles.load_batching_parameters(write(tmp_path, "# nothing set\n"))
    assert p.max_batch_size == configfiles.DEFAULT_MAX_BATCH_SIZE
    assert p.max_enqueued_batches == configfiles.DEFAULT_MAX_ENQUEUED_BATCHES
    assert p.num_batch_threads >= 1


@pytest.mark.parametrize(("text", "field", "words"), [
    ("max_batch_size: 3", None, "Error parsing text-format tensorflow.serving.BatchingParameters"),  # wrapper needs { value: }
    ("max_batch_siz { value: 3 }", None, 'no field named "max_batch_siz"'),
    ("num_batch_threads { value: 0 }", "num_batch_threads", ">= 1"),
    ("max_batch_size { value: -1 }", "max_batch_size", ">= 1"),
    ("batch_timeout_micros { value: -5 }", "batch_timeout_micros", ">= 0"),
    ("max_batch_size { value: 16 } allowed_batch_sizes: 4 allowed_batch_sizes: 8", "allowed_batch_sizes",
     "final entry must equal max_batch_size (16)"),
    ("max_batch_size { value: 8 } allowed_batch_sizes: 8 allowed_batch_sizes: 4 allowed_batch_sizes: 8",
     "allowed_batch_sizes", "strictly increasing"),
    ("max_batch_size { value: 8 } enable_large_batch_splitting { value: true } "
     "max_execution_batch_size { value: 16 }", "max_execution_batch_size", "<= max_batch_size"),
    ("max_batch_size { value: 32 } enable_large_batch_splitting { value: true } "
     "max_execution_batch_size { value: 16 } allowed_batch_sizes: 32", "allowed_batch_sizes",
     "max_execution_batch_size (16)"),
])
def test_bad_batching_values_name_file_and_field(tmp_path, text, field, words):
    path = write(tmp_path, text, "batching.config")
    with pytest.raises(ConfigFileError) as info:
        configfiles.load_batching_parameters(path)
    assert str(path) in str(info.value) and words in str(info.value)
    assert info.value.field == field


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigFileError, match="nope.config: file not found"):
        configfiles.load_monitoring_config(tmp_path / "nope.config")


@pytest.mark.parametrize(("text", "expected"), [
    ("prometheus_config { enable: true }", "/monitoring/prometheus/metrics"),  # TF Serving's default path
    ('prometheus_config { enable: true path: "/metrics" }', "/metrics"),
    ("", "/monitoring/prometheus/metrics"),
])
def test_monitoring_paths(tmp_path, text, expected):
    assert configfiles.load_monitoring_config(write(tmp_path, text)).prometheus_config.path == expected


@pytest.mark.parametrize("path", ["metrics", "/a b", "/m?x=1"])
def test_monitoring_bad_path(tmp_path, path):
    with pytest.raises(ConfigFileError) as info:
        configfiles.load_monitoring_config(write(tmp_path, f'prometheus_config {{ enable: true path: "{path}" }}'))
    assert info.value.field == "prometheus_config.path"


def pem_pair() -> tuple[str, str]:
    """A fresh CA-signed server certificate and its key, PEM."""
    pki = make_pki()
    return pki.server.cert_pem.decode(), pki.server.key_pem.decode()


def ssl_text(cert: str, key: str, ca: str = "", verify: bool = False) -> str:
    from google.protobuf import text_format

    msg = message_class("tensorflow.serving.SSLConfig")(server_cert=cert, server_key=key, custom_ca=ca,
                                                          client_verify=verify)
    return text_format.MessageToString(msg)


def test_ssl_config_with_real_pem(tmp_path):
    cert, key = pem_pair()
    cfg = configfiles.load_ssl_config(write(tmp_path, ssl_text(cert, key, ca=cert, verify=True)))
    assert cfg.server_cert == cert and cfg.server_key == key and cfg.custom_ca == cert and cfg.client_verify
    assert "BEGIN PRIVATE KEY" not in repr(cfg)  # never logged


@pytest.mark.parametrize(("case", "field"), [
    ("no_key", "server_key"), ("path_not_pem", "server_cert"), ("verify_without_ca", "custom_ca"),
    ("key_is_cert", "server_key"),
])
def test_ssl_config_errors(tmp_path, case, field):
    cert, key = pem_pair()
    text = {
        "no_key": ssl_text(cert, ""),
        "path_not_pem": ssl_text("/etc/ssl/server.crt", key),
        "verify_without_ca": ssl_text(cert, key, verify=True),
        "key_is_cert": ssl_text(cert, cert),
    }[case]
    with pytest.raises(ConfigFileError) as info:
        configfiles.load_ssl_config(write(tmp_path, text, "ssl.config"))
    assert info.value.field == field and "ssl.config" in str(info.value)


def test_protos_have_tf_servings_field_numbers():
    """Wire and text compatibility with TF Serving depend on these exact names and numbers."""
    expected = {
        "tensorflow.serving.BatchingParameters": {
            "max_batch_size": 1, "batch_timeout_micros": 2, "max_enqueued_batches": 3, "num_batch_threads": 4,
            "thread_pool_name": 5, "allowed_batch_sizes": 6, "pad_variable_length_inputs": 7,
            "enable_large_batch_splitting": 8, "max_execution_batch_size": 9},
        "tensorflow.serving.MonitoringConfig": {"prometheus_config": 1},
        "tensorflow.serving.PrometheusConfig": {"enable": 1, "path": 2},
        "tensorflow.serving.SSLConfig": {"server_key": 1, "server_cert": 2, "custom_ca": 3, "client_verify": 4},
    }
    for full_name, fields in expected.items():
        desc = message_class(full_name).DESCRIPTOR
        assert {f.name: f.number for f in desc.fields} == fields, full_name
    wrapped = message_class("tensorflow.serving.BatchingParameters").DESCRIPTOR.fields_by_name
    assert wrapped["max_batch_size"].message_type.full_name == "google.protobuf.Int64Value"
    assert wrapped["enable_large_batch_splitting"].message_type.full_name == "google.protobuf.BoolValue"


def test_protos_live_in_a_private_pool():
    desc = message_class("tensorflow.serving.SSLConfig").DESCRIPTOR
    assert desc.file.pool is not descriptor_pool.Default()
    with pytest.raises(KeyError):
        descriptor_pool.Default().FindMessageTypeByName("tensorflow.serving.SSLConfig")


def test_committed_descriptor_set_matches_the_proto_sources():
    proc = subprocess.run([sys.executable, "-m", "serving.protos.build", "--check"], cwd=REPO,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr


def test_no_tensorflow_import():
    code = ("import sys, serving.configfiles, serving.admin; "
            "print([m for m in sys.modules if m == 'tensorflow' or m.startswith('tensorflow.')])")
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"
