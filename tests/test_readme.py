"""README.md followed top to bottom as a newcomer would on a fresh clone: every ```bash and ```python block runs
as written, in document order, in a clone-like copy of the working tree (the pinned .venv linked in, free ports
in place of 8500/8501). A command ending in `&` (`make serve &`) runs in the background for the rest of the
walk, as in the reader's shell; the README itself waits for it (`curl --retry-connrefused`)."""
from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import REPO, free_port

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("readme")]

README = REPO / "README.md"
# Commands not re-run here, each with where it is tested instead (they take minutes or are the suite itself).
NOT_RUN = {
    "make demo": "tests/test_demo.py runs it end to end",
    "make test": "the test suite itself",
    "make bench": "a few minutes of load; the benchmark's parts are tested in tests/perf",
    "make bench-peers": "~15 minutes and two peer venvs; its parts are tested in tests/perf/test_bench_peers.py",
    "make soak": "the long soak run, on its own target",
    "make fuzz": "the long fuzz run, on its own target",
    ".venv/bin/python -m pytest": "runs tests",
}
COMMAND_TIMEOUT = 600
BACKGROUND = re.compile(r"^(?P<cmd>.*?)\s&\s*(?:#.*)?$")


def blocks(text: str) -> list[tuple[str, str]]:
    """(language, body) of every ```bash / ```python block, in document order."""
    return re.findall(r"```(bash|python)\n(.*?)```", text, flags=re.S)


def bash_commands(body: str) -> list[str]:
    """The command lines of a bash block (a trailing backslash continues a line)."""
    joined = re.sub(r"\\\n\s*", " ", body)
    return [line.strip() for line in joined.splitlines() if line.strip() and not line.strip().startswith("#")]


def not_run_reason(command: str) -> str | None:
    return next((why for prefix, why in NOT_RUN.items() if command == prefix or command.startswith(prefix + " ")),
                None)


def clone_like_copy(dest: Path) -> Path:
    """The files a clone has (tracked + untracked-not-ignored), with the shared .venv linked in."""
    files = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"], cwd=REPO,
                           capture_output=True, text=True, check=True).stdout.split("\0")
    for name in filter(None, files):
        src = REPO / name
        if src.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / name, follow_symlinks=False)
    (dest / ".venv").symlink_to((REPO / ".venv").resolve())
    return dest


def test_readme_has_no_bare_python():
    """`python` is not on a fresh machine's PATH with our packages: the venv's interpreter or `make`."""
    for lang, body in blocks(README.read_text()):
        if lang == "bash":
            for command in bash_commands(body):
                code = command.split(" #")[0]  # a comment may name the module a target runs
                assert not re.search(r"(^|[\s;&|])python(\s|$)", code), command


def test_make_serve_without_config_says_run_make_config(tmp_path):
    proc = subprocess.run(["make", "-s", "-o", ".venv/.installed", "serve", f"MODELS_DIR={tmp_path}"], cwd=REPO,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0
    assert "models.config does not exist: run `make config" in proc.stdout + proc.stderr


def test_readme_runs_top_to_bottom(tmp_path):
    clone = clone_like_copy(tmp_path / "clone")
    grpc_port, rest_port = free_port(), free_port()
    env = dict(os.environ, PORT=str(grpc_port), REST_PORT=str(rest_port), TF_CPP_MIN_LOG_LEVEL="2",
               CUDA_VISIBLE_DEVICES="", PYTHONUNBUFFERED="1",
               PYTHONPATH=str(clone))  # what `make install`'s editable install gives a fresh clone
    for var in ("MAKEFLAGS", "MAKELEVEL", "MFLAGS"):  # a newcomer's shell, not the `make test` that runs us:
        env.pop(var, None)  # inherited, make would print "make[1]: Entering/Leaving directory" lines

    def localize(command: str) -> str:
        command = re.sub(r"\b8500\b", str(grpc_port), re.sub(r"\b8501\b", str(rest_port), command))
        # never re-run the install prerequisite (pip) from a test: the linked .venv is already installed
        return re.sub(r"^make ", "make -o .venv/.installed ", command)

    background: list[subprocess.Popen] = []
    ran: list[str] = []
    outputs: dict[str, str] = {}
    try:
        for lang, body in blocks(README.read_text()):
            if lang == "python":
                proc = subprocess.run([".venv/bin/python", "-c", localize(body)], cwd=clone, env=env,
                                      capture_output=True, text=True, timeout=COMMAND_TIMEOUT)
                assert proc.returncode == 0, f"python block:\n{body}\n{proc.stdout}\n{proc.stderr[-3000:]}"
                outputs["python"] = proc.stdout
                continue
            for command in bash_commands(body):
                if not_run_reason(command):
                    continue
                bg = BACKGROUND.match(command)
                if bg:
                    log = open(tmp_path / f"background-{len(background)}.log", "w")  # noqa: SIM115 (closed below)
                    background.append(subprocess.Popen(["bash", "-c", localize(bg.group("cmd"))], cwd=clone,
                                                       env=env, stdout=log, stderr=subprocess.STDOUT,
                                                       start_new_session=True))
                    ran.append(command)
                    continue
                started = time.monotonic()
                proc = subprocess.run(["bash", "-c", localize(command)], cwd=clone, env=env, capture_output=True,
                                      text=True, timeout=COMMAND_TIMEOUT)
                logs = "".join(p.read_text()[-2000:] for p in tmp_path.glob("background-*.log"))
                assert proc.returncode == 0, (f"{command}\n(after {time.monotonic() - started:.0f} s)\n"
                                              f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}\nserver:\n{logs}")
                outputs[command] = proc.stdout
                ran.append(command)
    finally:
        for proc in background:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(30)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)

    # the walk did what the README says it does
    assert any(c.startswith("make serve") for c in ran) and any(c.startswith("make export") for c in ran)
    digits = clone / "models" / "digits"
    assert sorted(p.name for p in digits.iterdir() if p.name.isdigit()) == ["1", "2"]  # DRY_RUN deleted nothing
    from serving.admin import load_labels

    assert load_labels(digits).labels == {"stable": 1, "canary": 2}
    assert re.fullmatch(r"\[\d \d \d\]\n", outputs["python"]), outputs["python"]
    history = next(out for cmd, out in outputs.items() if cmd.startswith("make history")).splitlines()
    rows = history[next(i for i, line in enumerate(history) if line.startswith("AT ")) + 1:]
    assert [line.split()[1] for line in rows] == [
        "promote", "promote", "rollback", "promote"]
    prune = next(out for cmd, out in outputs.items() if cmd.startswith("make prune"))
    assert "would delete" in prune
