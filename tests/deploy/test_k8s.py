"""docker/k8s manifests against the Kubernetes schemas (kubernetes-validate, offline), their cross-references,
and the KServe InferenceService, checked structurally (no schema knows KServe's CRD) with its embedded
Kubernetes parts checked against the core schemas.
"""
from __future__ import annotations

import copy
import re
import subprocess
import sys

import kubernetes_validate
import pytest

from tests.conftest import REPO
from tests.deploy import manifests as mf

VERSIONS = ("1.29.0", kubernetes_validate.latest_version())  # oldest we support, newest schemas shipped


def validate(doc: dict, version: str) -> None:
    kubernetes_validate.validate(doc, version, strict=True)


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("path", mf.K8S_FILES, ids=lambda p: p.name)
def test_k8s_manifest_validates(path, version):
    docs = mf.k8s_docs(path)
    assert docs
    for doc in docs:
        validate(doc, version)


def test_k8s_expected_objects():
    kinds = sorted((d["apiVersion"], d["kind"]) for p in mf.K8S_FILES for d in mf.k8s_docs(p))
    assert kinds == [("apps/v1", "Deployment"), ("autoscaling/v2", "HorizontalPodAutoscaler"),
                     ("batch/v1", "Job"), ("policy/v1", "PodDisruptionBudget"), ("v1", "Service"), ("v1", "Service")]


@pytest.mark.parametrize("breakage", ["typo", "type", "missing"])
def test_k8s_validator_rejects_broken_manifests(breakage):
    doc = copy.deepcopy(mf.k8s_object("Deployment"))
    if breakage == "typo":
        doc["spec"]["replica"] = 2
    elif breakage == "type":
        doc["spec"]["replicas"] = "two"
    else:
        del doc["spec"]["template"]["spec"]["containers"][0]["name"]
    with pytest.raises(kubernetes_validate.ValidationError):
        validate(doc, VERSIONS[-1])


def test_k8s_validation_works_offline():
    code = (
        "import socket\n"
        "def refuse(*a, **k): raise OSError('network disabled for this check')\n"
        "socket.socket.connect = refuse; socket.create_connection = refuse; socket.getaddrinfo = refuse\n"
        "import yaml, kubernetes_validate\n"
        "for d in yaml.safe_load_all(open('docker/k8s/deployment.yaml')):\n"
        "    kubernetes_validate.validate(d, kubernetes_validate.latest_version(), strict=True)\n"
        "print('validated offline')\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and "validated offline" in proc.stdout, proc.stderr


def container() -> dict:
    (c,) = mf.k8s_object("Deployment")["spec"]["template"]["spec"]["containers"]
    return c


def test_k8s_deployment_wiring():
    dep = mf.k8s_object("Deployment")
    labels = dep["spec"]["template"]["metadata"]["labels"]
    assert dep["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert dep["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    c = container()
    assert c["image"] == "keras-serving-bundle:0.1.0"  # what make docker-build tags, never :latest
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    assert ports == {"grpc": 8500, "http": 8501}
    flags = mf.flag_map(c["args"])
    assert flags["port"] == "8500" and flags["rest_api_port"] == "8501"
    # the image's flags, plus TensorFlow thread pools sized to the CPU request
    image = mf.flag_map(mf.dockerfile_json(mf.DOCKER / "Dockerfile", "CMD"))
    threads = ("tensorflow_intra_op_parallelism", "tensorflow_inter_op_parallelism")
    assert {k: v for k, v in flags.items() if k not in threads} == image
    assert flags[threads[0]] == c["resources"]["requests"]["cpu"] == c["resources"]["limits"]["cpu"]
    assert c["command"] == mf.dockerfile_json(mf.DOCKER / "Dockerfile", "ENTRYPOINT")
    # probes, all native (no shell script): startup on the model status endpoint, readiness on the standard
    # gRPC health service (which the args must enable), liveness on the gRPC port
    model = {e["name"]: e["value"] for e in c["env"]}["MODEL_NAME"]
    assert c["startupProbe"]["httpGet"] == {"path": f"/v1/models/{model}", "port": "http"}
    assert c["readinessProbe"]["grpc"] == {"port": ports["grpc"]}  # a grpc probe takes a number, not a name
    assert flags["enable_grpc_healthcheck_service"] == "true"
    assert c["livenessProbe"]["tcpSocket"]["port"] in ports
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert "exec" not in c[probe], probe
    assert c["resources"]["requests"]["memory"] and c["resources"]["limits"]["memory"]
    assert dep["spec"]["template"]["metadata"]["annotations"]["prometheus.io/path"] == "/monitoring/prometheus/metrics"


def test_k8s_services_hpa_pdb_point_at_the_deployment():
    dep = mf.k8s_object("Deployment")
    pod_labels = dep["spec"]["template"]["metadata"]["labels"]
    port_names = {p["name"] for p in container()["ports"]}
    services = mf.k8s_docs(mf.DOCKER / "k8s" / "service.yaml")
    assert {s["metadata"]["name"] for s in services} == {"keras-serving", "keras-serving-headless"}
    for svc in services:
        assert svc["spec"]["selector"].items() <= pod_labels.items()
        assert {p["targetPort"] for p in svc["spec"]["ports"]} <= port_names
    main = next(s for s in services if s["metadata"]["name"] == "keras-serving")
    assert {(p["port"], p["appProtocol"]) for p in main["spec"]["ports"]} == {(8500, "grpc"), (8501, "http")}
    hpa, pdb = mf.k8s_object("HorizontalPodAutoscaler"), mf.k8s_object("PodDisruptionBudget")
    ref = hpa["spec"]["scaleTargetRef"]
    assert (ref["apiVersion"], ref["kind"], ref["name"]) == ("apps/v1", "Deployment", dep["metadata"]["name"])
    assert 1 <= hpa["spec"]["minReplicas"] <= dep["spec"]["replicas"] <= hpa["spec"]["maxReplicas"]
    assert pdb["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    assert pdb["spec"]["minAvailable"] < hpa["spec"]["minReplicas"]  # a node drain can always proceed


def test_k8s_rollout_job_runs_the_rollout_against_the_service():
    """The Job's command line is one our CLI accepts, aimed at the Service's gRPC and REST ports, with the
    models volume mounted read-write where --models-dir points, as the user the bundle image runs as."""
    from serving.admin.__main__ import build_parser

    job = mf.k8s_object("Job")
    spec = job["spec"]["template"]["spec"]
    (c,) = spec["containers"]
    assert job["spec"]["backoffLimit"] == 0 and spec["restartPolicy"] == "Never"
    assert c["command"] == ["python", "-m", "serving.admin", "rollout"]
    env = {e["name"]: e["value"] for e in c["env"]}
    args = [a.replace("$(MODEL_NAME)", env["MODEL_NAME"]) for a in c["args"]]
    parsed = build_parser().parse_args(["rollout", *args])
    assert parsed.name == env["MODEL_NAME"] == container_env_model()
    service = next(s for s in mf.k8s_docs(mf.DOCKER / "k8s" / "service.yaml") if s["metadata"]["name"] == "keras-serving")
    ports = {p["name"]: p["port"] for p in service["spec"]["ports"]}
    assert parsed.server == f"keras-serving:{ports['grpc']},keras-serving:{ports['http']}"
    mounts = {m["name"]: m for m in c["volumeMounts"]}
    assert str(parsed.models_dir) == mounts["models"]["mountPath"] and not mounts["models"].get("readOnly")
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert volumes["models"]["persistentVolumeClaim"]["claimName"]
    # the bundle's Python image (Dockerfile.local) provides `python -m serving.admin`, as uid 10001
    local = mf.dockerfile_instructions(mf.DOCKER / "Dockerfile.local")
    assert ("USER", str(spec["securityContext"]["runAsUser"])) in local
    assert c["image"] == "keras-serving-bundle-local:0.1.0"
    # a poll of the servers (30 s) per config change plus the shadow load fits in the Job's deadline
    poll = int(mf.flag_map(container()["args"])["model_config_file_poll_wait_seconds"])
    assert parsed.load_timeout > poll and job["spec"]["activeDeadlineSeconds"] > 4 * poll + parsed.canary_s


def container_env_model() -> str:
    return {e["name"]: e["value"] for e in container()["env"]}["MODEL_NAME"]


# KServe: serving.kserve.io/v1beta1 field names (ComponentExtensionSpec + the predictor's model spec).
KSERVE_PREDICTOR_KEYS = {"model", "minReplicas", "maxReplicas", "scaleTarget", "scaleMetric", "scaleMetricType",
                         "containerConcurrency", "timeout", "canaryTrafficPercent", "logger", "batcher", "labels",
                         "annotations", "serviceAccountName", "nodeSelector", "tolerations", "affinity"}
KSERVE_MODEL_KEYS = {"modelFormat", "runtime", "runtimeVersion", "storageUri", "protocolVersion", "resources",
                     "env", "args", "ports", "readinessProbe", "livenessProbe"}
DNS_1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")


def kserve_problems(doc: dict) -> list[str]:
    """Every structural problem of an InferenceService for TF Serving (empty list: valid)."""
    problems = []
    if doc.get("apiVersion") != "serving.kserve.io/v1beta1" or doc.get("kind") != "InferenceService":
        problems.append("apiVersion/kind must be serving.kserve.io/v1beta1 InferenceService")
    name = doc.get("metadata", {}).get("name", "")
    if not DNS_1123_LABEL.match(name):
        problems.append(f"metadata.name {name!r} is not a DNS-1123 label")
    pred = doc.get("spec", {}).get("predictor", {})
    problems += [f"unknown predictor field {k!r}" for k in sorted(set(pred) - KSERVE_PREDICTOR_KEYS)]
    model = pred.get("model", {})
    problems += [f"unknown model field {k!r}" for k in sorted(set(model) - KSERVE_MODEL_KEYS)]
    if model.get("modelFormat", {}).get("name") != "tensorflow":
        problems.append("model.modelFormat.name must be tensorflow")
    if not re.match(r"^(gs|s3|pvc|https?|hdfs|webhdfs|oci)://\S+$", str(model.get("storageUri", ""))):
        problems.append("model.storageUri must be a gs://, s3://, pvc://, http(s):// ... URI")
    lo, hi = pred.get("minReplicas", 1), pred.get("maxReplicas", 0)
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in (lo, hi)) or (hi and lo > hi):
        problems.append("minReplicas/maxReplicas must be integers with min <= max")
    if pred.get("scaleMetric", "cpu") not in {"cpu", "memory", "concurrency", "rps"}:
        problems.append("scaleMetric must be cpu, memory, concurrency or rps")
    if "canaryTrafficPercent" in pred and not 0 <= pred["canaryTrafficPercent"] <= 100:
        problems.append("canaryTrafficPercent must be 0..100")
    return problems


def test_kserve_inferenceservice_is_structurally_valid():
    (doc,) = mf.k8s_docs(mf.KSERVE_FILE)
    assert kserve_problems(doc) == []
    model = doc["spec"]["predictor"]["model"]
    assert model["runtimeVersion"] == mf.TF_SERVING_VERSION  # the same TF Serving as the images
    # the Kubernetes parts inside the CRD, against the core schemas: resources as a container's, and the
    # metadata as a Pod's
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": doc["metadata"],
           "spec": {"containers": [{"name": "kserve-container", "image": "x", "resources": model["resources"],
                                    "readinessProbe": model["readinessProbe"]}]}}
    for version in VERSIONS:
        validate(pod, version)
    # a native probe on KServe's REST port (8080 for its TensorFlow runtime) asking for this model's status
    assert model["readinessProbe"]["httpGet"] == {"path": f"/v1/models/{doc['metadata']['name']}", "port": 8080}


@pytest.mark.parametrize(("mutate", "problem"), [
    (lambda d: d["spec"]["predictor"].update(minReplica=1), "unknown predictor field 'minReplica'"),
    (lambda d: d["spec"]["predictor"]["model"]["modelFormat"].update(name="onnx"), "modelFormat.name"),
    (lambda d: d["spec"]["predictor"]["model"].update(storageUri="/local/path"), "storageUri"),
    (lambda d: d["spec"]["predictor"].update(minReplicas=20), "min <= max"),
    (lambda d: d["metadata"].update(name="Digits_Model"), "DNS-1123"),
])
def test_kserve_checker_catches_mistakes(mutate, problem):
    (doc,) = mf.k8s_docs(mf.KSERVE_FILE)
    mutate(doc)
    assert any(problem in p for p in kserve_problems(doc)), kserve_problems(doc)
