"""The poller thread: re-scans version directories and re-reads the model config file on TF Serving's clocks.

Every ``--file_system_poll_wait_seconds`` it runs one ``ModelManager.sync``; every
``--model_config_file_poll_wait_seconds`` it re-reads the config file and, when it changed, reloads it (the new
file is the full desired state). 0 disables either. A bad config file or a refused config is logged and the
running config stays; an unexpected error is logged with its traceback and polling goes on, so the poller never
dies silently.
"""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from .errors import ServingError
from .manager import ModelManager
from .model_config import ConfigError, ModelServerConfig

log = logging.getLogger("serving.poller")


def changed_config(loader: Callable[[], ModelServerConfig], current: ModelServerConfig) -> ModelServerConfig | None:
    """The config file's content when it differs from ``current``; None when unchanged or unreadable (logged,
    and the running config stays). Shared by this poller and the ``--num_workers`` supervisor."""
    try:
        config = loader()
    except ConfigError as exc:
        # TF Serving's PollFilesystemAndReloadConfig wording; the running config stays.
        log.error("Failed to read ModelServerConfig file: %s. Not reloading the model config", exc)
        return None
    return None if config == current else config


class Poller:
    """Owns the polling thread of one ``ModelManager``."""

    def __init__(self, manager: ModelManager, *, fs_every: int, config_every: int = 0,
                 config_loader: Callable[[], ModelServerConfig] | None = None) -> None:
        self.manager = manager
        self.fs_every = fs_every if fs_every > 0 else 0
        self.config_every = config_every if config_every > 0 and config_loader is not None else 0
        self.config_loader = config_loader
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if not (self.fs_every or self.config_every):
            return
        self._thread = threading.Thread(target=self._loop, name="version-poller", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop polling; waits for a pass in progress (a load) up to ``timeout`` seconds."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _loop(self) -> None:
        now = time.monotonic()
        next_fs = now + self.fs_every if self.fs_every else float("inf")
        next_cfg = now + self.config_every if self.config_every else float("inf")
        while not self._stop.wait(max(0.0, min(next_fs, next_cfg) - time.monotonic())):
            try:
                if time.monotonic() >= next_cfg:
                    self._poll_config()
                    next_cfg = time.monotonic() + self.config_every
                if time.monotonic() >= next_fs:
                    self.manager.sync()
                    next_fs = time.monotonic() + self.fs_every
            except Exception:  # the poller never dies: log the bug with its traceback and keep polling
                log.exception("Version poller pass failed; will retry")
                next_fs = time.monotonic() + (self.fs_every or float("inf"))
                next_cfg = time.monotonic() + (self.config_every or float("inf"))

    def _poll_config(self) -> None:
        config = changed_config(self.config_loader, self.manager.config)
        if config is None:
            return
        try:
            self.manager.reload_config(config)
            log.info("Reloaded the model config file")
        except ServingError as exc:
            log.error("PollFilesystemAndReloadConfig failed to ReloadConfig: %s: %s", exc.code.name, exc.message)
