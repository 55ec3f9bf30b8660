"""The rollout's view of the live server, through the TF-free clients only (gRPC and REST, public APIs).

Model status (`GetModelStatus` / `GET /v1/models/<name>`) tells when the server has loaded or unloaded a
version; model metadata *by label* tells which version a label resolves to on each protocol (the proof that
the server applied a `models.config` change, since TF Serving reloads it on its own poll); predict *by label*
replays the recorded parity samples. Every call carries a timeout; waits are bounded and raise `LiveError`.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from clients.errors import ServingClientError
from clients.grpc_client import GrpcClient
from clients.parity import parse_server
from clients.rest_client import RestClient
from clients.retry import NO_RETRY, RetryPolicy
from export.compare import compare_outputs

__all__ = ["LiveError", "LiveServer", "Verification"]

POLL_INTERVAL_S = 0.2


class LiveError(Exception):
    """A live check did not pass (or a wait ran out); the message carries the figure."""


@dataclass(frozen=True)
class Verification:
    """Recorded samples replayed by label over one protocol: worst differences and any failures."""

    protocol: str
    max_abs: float
    max_rel: float
    failures: tuple[str, ...]


class LiveServer:
    """Both protocols of one server (`host:grpc,host:rest`), with a per-call timeout on every request."""

    def __init__(self, server: str, call_timeout: float = 10.0) -> None:
        try:
            grpc_target, rest_target = parse_server(server)
        except ValueError as err:
            raise LiveError(str(err)) from None
        self.server = server
        self.call_timeout = call_timeout
        retry = RetryPolicy(max_attempts=2)
        self.clients = {"grpc": GrpcClient(grpc_target, timeout=call_timeout, retry=retry),
                        "rest": RestClient(rest_target, timeout=call_timeout, retry=retry, typed_outputs=True)}
        # The shadow load measures errors, so its clients never retry one away.
        self.shadow_clients = {"grpc": GrpcClient(grpc_target, timeout=call_timeout, retry=NO_RETRY),
                               "rest": RestClient(rest_target, timeout=call_timeout, retry=NO_RETRY,
                                                  typed_outputs=True)}

    def close(self) -> None:
        for client in (*self.clients.values(), *self.shadow_clients.values()):
            client.close()

    # ---------------------------------------------------------------- status
    def states(self, name: str) -> dict[int, tuple[str, str]]:
        """{version: (state, error)} as the server reports them over gRPC ({} when it knows none)."""
        try:
            found = self.clients["grpc"].status(model=name)
        except ServingClientError:
            return {}
        return {s.version: (s.state, "" if s.error_code == "OK" else f"{s.error_code}: {s.error_message}")
                for s in found}

    def wait_available(self, name: str, version: int, timeout: float) -> float:
        """Block until `version` is AVAILABLE; `LiveError` on a failed load or after `timeout`."""
        def check() -> bool:
            state, error = self.states(name).get(version, ("unknown", ""))
            if state == "END" and error:
                raise LiveError(f"version {version} failed to load: {error}")
            return state == "AVAILABLE"

        def message() -> str:
            state = self.states(name).get(version, ("unknown",))[0]
            hint = ("; the server never started loading it: does it poll this models.config "
                    "(--model_config_file_poll_wait_seconds > 0) and see the version directory?"
                    if state == "unknown" else "")
            return f"version {version} not AVAILABLE after {timeout:.0f} s (state: {state}){hint}"

        return _wait(check, timeout, message)

    def wait_unloaded(self, name: str, version: int, timeout: float) -> bool:
        """Block until the server no longer holds `version` (END or forgotten); False after `timeout`."""
        try:
            _wait(lambda: self.states(name).get(version, ("END", ""))[0] == "END", timeout, lambda: "")
        except LiveError:
            return False
        return True

    def label_versions(self, name: str, label: str) -> dict[str, int | None]:
        """{protocol: the version `label` resolves to} (None where the server does not know the label)."""
        out: dict[str, int | None] = {}
        for protocol, client in self.clients.items():
            try:
                out[protocol] = client.metadata(model=name, label=label, timeout=self.call_timeout).version
            except ServingClientError:
                out[protocol] = None
        return out

    def wait_label(self, name: str, label: str, version: int, timeout: float) -> float:
        """Block until `label` resolves to `version` over both protocols (the server applied the config)."""
        last: dict[str, int | None] = {}

        def check() -> bool:
            last.update(self.label_versions(name, label))
            return all(v == version for v in last.values())

        return _wait(check, timeout, lambda: f"label {label!r} not on version {version} after {timeout:.0f} s "
                                             f"(server: {last})")

    # ---------------------------------------------------------------- predict
    def verify(self, name: str, label: str, inputs: Mapping[str, np.ndarray], reference: Mapping[str, np.ndarray],
               rtol: float, atol: float) -> list[Verification]:
        """Replay `inputs` by label over both protocols and compare with `reference` within the tolerance."""
        results = []
        for protocol, client in self.clients.items():
            try:
                got = client.predict(dict(inputs), model=name, label=label, timeout=self.call_timeout)
            except ServingClientError as err:
                results.append(Verification(protocol, float("inf"), float("inf"), (f"request failed: {err}",)))
                continue
            rows, failures = compare_outputs(f"reference~{protocol}", reference, got, rtol, atol)
            results.append(Verification(protocol, max((r.max_abs for r in rows), default=0.0),
                                        max((r.max_rel for r in rows), default=0.0),
                                        tuple(f.describe() for f in failures)))
        return results


def _wait(check: Callable[[], bool], timeout: float, message: Callable[[], str]) -> float:
    """Poll `check` until true (returns the seconds it took); `LiveError(message())` after `timeout`."""
    start = time.monotonic()
    while True:
        if check():
            return time.monotonic() - start
        if time.monotonic() - start > timeout:
            raise LiveError(message())
        time.sleep(POLL_INTERVAL_S)
