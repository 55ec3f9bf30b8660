"""Every command in docs/deploy.md runs (in document order) or is marked as needing Docker/Kubernetes/a
server; the README's deploy section names only files that exist."""
from __future__ import annotations

import json
import re
import subprocess

from serving.admin import load_labels
from tests.conftest import REPO
from tests.deploy.conftest import fake_metadata, quiet_env

DOC = REPO / "docs" / "deploy.md"
MARKERS = ("needs Docker", "needs Kubernetes", "needs a running server", "needs your TLS files")


def doc_commands(text: str) -> list[str]:
    """The command lines of the ```bash blocks in `text`."""
    blocks = re.findall(r"```bash\n(.*?)```", text, flags=re.S)
    return [line.strip() for block in blocks for line in block.splitlines() if line.strip()]


def make(args: list[str]) -> subprocess.CompletedProcess:
    # -o: never re-run the `install` prerequisite (pip) from a test
    return subprocess.run(["make", "-s", "-o", ".venv/.installed", *args], cwd=REPO, env=quiet_env(),
                          capture_output=True, text=True, timeout=120)


def readme_section() -> str:
    readme = (REPO / "README.md").read_text()
    start = readme.index("## Deploying with TensorFlow Serving")
    return readme[start:readme.index("\n## ", start + 1)]


def simulate_export(models_dir, name: str) -> None:
    """Stand-in for a `make export` line: the next version directory with its metadata.json."""
    mdir = models_dir / name
    mdir.mkdir(parents=True, exist_ok=True)
    version = max((int(p.name) for p in mdir.iterdir() if p.name.isdigit()), default=0) + 1
    (mdir / str(version)).mkdir()
    (mdir / str(version) / "metadata.json").write_text(json.dumps(fake_metadata(name, version)))


def test_every_deploy_doc_command_runs(tmp_path):
    models = tmp_path / "models"
    models.mkdir()
    ran = []
    for line in doc_commands(DOC.read_text()):
        if any(marker in line for marker in MARKERS):
            continue
        assert line.startswith("make "), f"unmarked command that the tests cannot run: {line!r}"
        assert "MODELS_DIR=models" in line, f"doc command without MODELS_DIR=models: {line!r}"
        args = line.split()[1:]
        if args[0] == "export":
            simulate_export(models, re.search(r"NAME=(\S+)", line).group(1))
            continue
        args = [f"MODELS_DIR={models}" if a == "MODELS_DIR=models" else a for a in args]
        proc = make(args)
        assert proc.returncode == 0, f"{line}\n{proc.stdout}\n{proc.stderr}"
        ran.append(args[0])
    assert {"config", "versions", "promote", "rollback", "prune"} <= set(ran)
    # the story the doc tells ends where it says: stable rolled back to 1, canary on 2, both kept
    assert load_labels(models / "digits").labels == {"stable": 1, "canary": 2}
    assert sorted(p.name for p in (models / "digits").iterdir() if p.name.isdigit()) == ["1", "2"]
    assert "base_path: \"/models/digits\"" in (models / "models.config").read_text()


def test_readme_deploy_commands_run(tmp_path):
    """The README's summary block, on a models dir where stable went 1 -> 3 (so rollback has a target)."""
    models = tmp_path / "models"
    for _ in range(3):
        simulate_export(models, "digits")
    (models / "digits" / ".labels.json").write_text(json.dumps({"labels": {"stable": 3}, "stable_history": [1, 3]}))
    commands = doc_commands(readme_section())
    assert commands
    for line in commands:
        assert line.startswith("make "), line
        if line.split()[1] == "export":  # the README's own walk (tests/test_readme.py) exports for real
            simulate_export(models, re.search(r"NAME=(\S+)", line).group(1))
            continue
        proc = make([*line.split("#")[0].split()[1:], f"MODELS_DIR={models}"])
        if proc.returncode == 0 and " staged in " in proc.stdout:
            # no server here to wait for (tests/test_readme.py has one): do what the message says, run it again
            proc = make([*line.split("#")[0].split()[1:], f"MODELS_DIR={models}"])
        assert proc.returncode == 0, f"{line}\n{proc.stdout}\n{proc.stderr}"
    assert load_labels(models / "digits").labels["stable"] == 1  # the rollback happened


def test_readme_deploy_section_points_at_real_files():
    section = readme_section()
    assert "(written with the deployment configs)" not in section
    for path in re.findall(r"`((?:docker|docs)/[\w./-]+)`", section):
        assert (REPO / path).exists(), path


def test_make_config_with_tls_files(tmp_path):
    """The doc's TLS lines (marked: they need your files) with generated files, through the Makefile."""
    from serving import configfiles
    from tests.deploy.test_configfiles import pem_pair

    models = tmp_path / "models"
    simulate_export(models, "digits")
    cert, key = pem_pair()
    (tmp_path / "server.crt").write_text(cert)
    (tmp_path / "server.key").write_text(key)
    proc = make(["config", f"MODELS_DIR={models}", f"SSL_CERT={tmp_path / 'server.crt'}",
                 f"SSL_KEY={tmp_path / 'server.key'}", f"SSL_CA={tmp_path / 'server.crt'}", "SSL_CLIENT_VERIFY=1"])
    assert proc.returncode == 0, proc.stderr
    cfg = configfiles.load_ssl_config(models / "ssl.config")
    assert cfg.client_verify and cfg.custom_ca == cert and cfg.server_key == key
