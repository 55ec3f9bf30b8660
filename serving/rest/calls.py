"""The one place a REST request may leave the event loop: a ``Blocking`` step, and the drivers that run it.

A REST request is written once, as a generator (``RestApi.steps``, ``Handler.steps``): routing, JSON parsing,
tensor decoding and encoding run where the generator runs; the work that may block for long -- the backend
call, or rendering the metrics page -- is *yielded* as a ``Blocking`` step and its result (or exception) is
sent back in. Two drivers run the same generator:

* ``run_inline`` calls every step where it stands (tests, and any synchronous caller);
* the HTTP connection (``serving.rest.protocol``) runs the generator on the event loop and decides per step
  whether to call it inline or on the ``CallPool`` (``serving.rest.deadline``).

Why (docs/perf/rest.md): the Python part of a request holds the GIL whichever thread runs it, so running it on
16 pool threads at once only adds GIL hand-offs (each numpy call releases and re-takes it, and under
contention every re-take waits for the switch interval); keeping it on the loop thread and sending only the
backend call -- which releases the GIL for its whole run -- to a worker lets the runtime use the other cores
while the loop decodes the next request. A call known to be short runs inline too, which saves the two thread
hops that dominated small requests.
"""
from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Blocking:
    """A step that may block: ``fn()``'s result is sent back into the generator that yielded it.

    ``model`` names the model whose backend ``fn`` calls, so the driver can ask the DataPlane whether that
    model's calls are short enough to run inline (None: not a model call; always off the loop)."""

    fn: Callable[[], Any]
    model: str | None = None


Steps = Generator[Blocking, Any, T]


def run_inline(steps: Steps[T]) -> T:
    """Drive ``steps`` to its return value, calling every ``Blocking`` step on this thread."""
    value: Any = None
    error: BaseException | None = None
    while True:
        try:
            step = steps.throw(error) if error is not None else steps.send(value)
        except StopIteration as stop:
            return stop.value
        value, error = None, None
        try:
            value = step.fn()
        except Exception as exc:  # noqa: BLE001 - handed back into the generator, which maps it
            error = exc
