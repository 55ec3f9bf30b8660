"""Dynamic request batching as a ``Backend`` wrapper, with TF Serving's ``BatchingParameters`` semantics.

``--enable_batching`` makes the version manager wrap every loaded backend in ``BatchingBackend`` (see
``make_backend_wrapper``); handlers never know. Concurrent ``predict`` calls that can share one runtime call are
merged along dimension 0, run once, and the outputs are split back so every caller gets exactly its rows.

What may merge (TF Serving's batching session keys its queues the same way): the same signature, the same
output filter, the same input names and dtypes, and the same non-batch dimensions -- unless
``pad_variable_length_inputs``, which pads each input up to the largest non-batch dimensions in the batch
with that tensor's first element (TF Serving's ``AddPadding``; outputs keep the padded size).

Scheduling follows ``BasicBatchScheduler``: per queue an open batch collects tasks until it holds
``max_batch_size`` rows (``max_execution_batch_size`` with ``enable_large_batch_splitting``, which also
splits a large task across batches) or ``batch_timeout_micros`` passed since its first task; with a timeout
of 0 an idle batch thread takes the open batch at once. At most ``num_batch_threads`` batches run at a time.
A batch that is due when a request enqueues (timeout 0, or a full batch) while a run slot is free is run on
that request's own thread: the request's tensors were decoded on that thread, so batching then costs no
thread hand-off at all (the hand-off dominated small models); a request that would be a batch of one at once
(timeout 0, nothing of its kind waiting, a slot free) skips the queue entirely. Otherwise the
``num_batch_threads`` threads run batches as they come due, while the waiting requests' threads sleep. A batch
is padded up to the next ``allowed_batch_sizes`` entry with copies of its first row, and the padding is
sliced off again. A task that needs a new batch while ``max_enqueued_batches`` batches of its queue are
waiting is refused with RESOURCE_EXHAUSTED (HTTP 429), the message TF Serving uses.

Work-conserving dispatch (a local-server extension; ``--batching_strict_timeout`` turns it off): the
protocol adapters count, per model, the Predict requests in flight (``Arrivals``). An open batch holding all
of its model's requests in flight is due at once instead of at its timeout: no other client of the model is
being served, so waiting could only add latency. So a lone client never pays ``batch_timeout_micros``,
while under load, where other requests are in flight, batches wait and fill exactly as TF Serving's do.
Warmup calls, made outside any request, keep the timeout.

Errors stay with their request: when a merged run fails, each task of the batch is re-run on its own, so a
request the runtime refuses never fails the requests it happened to be batched with.
Classify and Regress pass through unbatched (their inputs are serialized tf.Examples).
"""
from __future__ import annotations

import contextvars
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .backends import Backend, SignatureInfo, load_backend
from .backends.base import CallMeter
from .configfiles import BatchingParameters, batching_parameters_from_text
from .errors import Internal, InvalidArgument, ResourceExhausted, ServingError, Unavailable
from .monitoring import Metrics

QUEUE_FULL = "The batch scheduling queue to which this task was submitted is full"


_MODEL: contextvars.ContextVar[str | None] = contextvars.ContextVar("serving_batch_model", default=None)


class Arrivals:
    """Per model, the Predict requests in flight: received and not yet answered.

    The protocol adapters enter ``scope(model)`` for the whole request (``DataPlane.request_scope``); the
    model name travels in a context variable, which the REST call pool copies to its worker, so the batcher
    knows whose request it holds. A batch whose requests are all the model's requests in flight is due at
    once: no other client of that model is being served, so none will send a request that could join it
    while it waits (a closed-loop client sends its next request only after its answer). Under concurrency
    other requests are in flight (running, waiting, decoding) and batches wait for company as TF Serving's do.
    When a request leaves, the schedulers holding open batches of its model are woken to check again.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._in_flight: dict[str, int] = {}
        self._listeners: dict[str, weakref.WeakSet[_Scheduler]] = {}

    @contextmanager
    def scope(self, model: str) -> Iterator[None]:
        with self._lock:
            self._in_flight[model] = self._in_flight.get(model, 0) + 1
        token = _MODEL.set(model)
        try:
            yield
        finally:
            _MODEL.reset(token)
            with self._lock:
                left = self._in_flight.get(model, 0) - 1
                if left > 0:
                    self._in_flight[model] = left
                else:
                    self._in_flight.pop(model, None)
                listeners = self._listeners.get(model)
                waiting = [s for s in listeners if s.has_open_batches()] if listeners else ()
            for scheduler in waiting:
                scheduler.wake()

    def in_flight(self, model: str) -> int:
        """Requests for ``model`` received and not yet answered, now."""
        return self._in_flight.get(model, 0)

    def listen(self, model: str, scheduler: _Scheduler) -> None:
        """Wake ``scheduler`` whenever a request for ``model`` leaves."""
        listeners = self._listeners.get(model)
        if listeners is None or scheduler not in listeners:
            with self._lock:
                self._listeners.setdefault(model, weakref.WeakSet()).add(scheduler)


class WouldWait(Exception):  # noqa: N818 - a signal, not an error: the caller retries where it may block
    """Raised by a batched ``predict`` under ``without_waiting()`` when it cannot run at once as a batch of its
    own (no run slot free, or it needs padding). Nothing ran; the caller retries the call where it may block
    (the REST event loop hands it to a worker)."""


_NO_WAIT: contextvars.ContextVar[bool] = contextvars.ContextVar("serving_batch_no_wait", default=False)


@contextmanager
def without_waiting() -> Iterator[None]:
    """Batched calls made inside either run at once, alone, or raise ``WouldWait``: for a caller that must
    never block (an event loop running a short model's call inline)."""
    token = _NO_WAIT.set(True)
    try:
        yield
    finally:
        _NO_WAIT.reset(token)


@dataclass(eq=False)
class _Task:
    """One caller's rows (a whole request, or one piece of a split one) and the slot for its answer."""

    inputs: dict[str, np.ndarray]
    size: int
    done: threading.Event = field(default_factory=threading.Event)
    enqueued: float = field(default_factory=time.perf_counter)
    outputs: dict[str, np.ndarray] | None = None
    error: BaseException | None = None

    def finish(self, outputs: dict[str, np.ndarray] | None, error: BaseException | None = None) -> None:
        self.outputs, self.error = outputs, error
        self.done.set()


@dataclass(eq=False)
class _Batch:
    key: tuple
    signature: str
    output_filter: tuple[str, ...]
    deadline: float
    tasks: list[_Task] = field(default_factory=list)
    size: int = 0
    closed: bool = False
    model: str | None = None  # whose Arrivals may make it due early (None: only full or timed out)
    requests: int = 0  # distinct requests with rows in this batch


def _queue_key(signature: str, output_filter: tuple[str, ...], inputs: Mapping[str, np.ndarray], pad: bool) -> tuple:
    shapes = tuple(sorted((k, v.dtype.str, v.ndim if pad else v.shape[1:]) for k, v in inputs.items()))
    return signature, output_filter, shapes


def _batch_size(inputs: Mapping[str, np.ndarray]) -> int:
    sizes = set()
    for value in inputs.values():
        if value.ndim == 0:
            raise InvalidArgument("Batching Run() input tensors must have at least one dimension")
        sizes.add(value.shape[0])
    if len(sizes) != 1:
        raise InvalidArgument("Batching Run() input tensors must have equal 0th-dimension size")
    return sizes.pop()


def _pad_inner(value: np.ndarray, target: tuple[int, ...]) -> np.ndarray:
    """Pad dims 1.. of ``value`` up to ``target`` with its first element (TF Serving's AddPadding)."""
    if value.shape[1:] == target:
        return value
    if value.size == 0:
        raise InvalidArgument("Got empty tensor in batch of non-empty tensors.")
    widths = [(0, 0)] + [(0, t - s) for s, t in zip(value.shape[1:], target, strict=True)]
    return np.pad(value, widths, mode="constant", constant_values=value.reshape(-1)[0])


def merge_inputs(tasks: Sequence[_Task], padded_size: int, pad_variable_length: bool) -> dict[str, np.ndarray]:
    """Concatenate the tasks' inputs along dim 0, then repeat the first row up to ``padded_size`` rows."""
    merged = {}
    for name in tasks[0].inputs:
        parts = [t.inputs[name] for t in tasks]
        if pad_variable_length:
            target = tuple(max(p.shape[d] for p in parts) for d in range(1, parts[0].ndim))
            parts = [_pad_inner(p, target) for p in parts]
        extra = padded_size - sum(p.shape[0] for p in parts)
        if extra:
            parts.append(np.repeat(parts[0][:1], extra, axis=0))
        merged[name] = np.concatenate(parts, axis=0)
    return merged


def split_outputs(outputs: Mapping[str, np.ndarray], sizes: Sequence[int], padded_size: int) -> list[dict]:
    """Slice every output back into the tasks' rows (the padding rows at the end are dropped)."""
    for name, value in outputs.items():
        if np.ndim(value) == 0 or np.shape(value)[0] != padded_size:
            raise Internal(f"Batched output tensor's 0th dimension does not equal the sum of the 0th dimension "
                           f"sizes of the input tensors (output {name!r}: {list(np.shape(value))}, "
                           f"batch {padded_size})")
    parts, start = [], 0
    for size in sizes:
        parts.append({name: value[start : start + size] for name, value in outputs.items()})
        start += size
    return parts


class _Scheduler:
    """Queues of open/closed batches, one per queue key, served by ``num_batch_threads`` threads."""

    def __init__(self, params: BatchingParameters, run: Callable[[_Batch], None],
                 arrivals: Arrivals | None = None) -> None:
        self.params = params
        self.arrivals = arrivals
        self.capacity = params.max_execution_batch_size if params.enable_large_batch_splitting \
            else params.max_batch_size
        self.timeout = params.batch_timeout_micros / 1e6
        self._run = run
        self._queues: dict[tuple, deque[_Batch]] = {}
        self._cond = threading.Condition()
        self._stopped = False
        self._running = 0  # batches being run, by batch threads or by callers (at most num_batch_threads)
        self._threads = [threading.Thread(target=self._work, name=f"{params.thread_pool_name}-{i}", daemon=True)
                         for i in range(params.num_batch_threads)]
        for thread in self._threads:
            thread.start()

    def pieces(self, queue: deque[_Batch], size: int) -> list[int]:
        """How ``size`` rows are cut: to fill the open batch, then whole batches (only with splitting)."""
        room = self.capacity - queue[-1].size if queue and not queue[-1].closed else 0
        if not self.params.enable_large_batch_splitting or size <= room or size <= self.capacity and not room:
            return [size]
        cuts = [room] if room else []
        rest = size - room
        cuts += [self.capacity] * (rest // self.capacity) + ([rest % self.capacity] if rest % self.capacity else [])
        return cuts

    def submit(self, key: tuple, signature: str, output_filter: tuple[str, ...], inputs: dict[str, np.ndarray],
               size: int, model: str | None = None) -> list[_Task]:
        """Cut ``inputs`` into tasks and place them atomically (or refuse them all); returns the tasks."""
        if model is not None and self.arrivals is not None:
            self.arrivals.listen(model, self)
        with self._cond:
            if self._stopped:
                raise Unavailable("Batching queue is shut down: the model version is being unloaded")
            queue = self._queues.setdefault(key, deque())
            cuts = self.pieces(queue, size)
            fits_open = bool(queue) and not queue[-1].closed and queue[-1].size + cuts[0] <= self.capacity
            new_batches = len(cuts) - (1 if fits_open else 0)
            if new_batches and len(queue) + new_batches > self.params.max_enqueued_batches:
                raise ResourceExhausted(QUEUE_FULL)
            tasks, start = [], 0
            for cut in cuts:
                task = _Task({k: v[start : start + cut] for k, v in inputs.items()}, cut)
                start += cut
                if not queue or queue[-1].closed or queue[-1].size + cut > self.capacity:
                    if queue:
                        queue[-1].closed = True
                    queue.append(_Batch(key, signature, output_filter, time.monotonic() + self.timeout,
                                        model=model))
                batch = queue[-1]
                batch.requests += 1
                batch.tasks.append(task)
                batch.size += cut
                batch.closed = batch.size >= self.capacity
                tasks.append(task)
            ready = self._claim(time.monotonic())
            if ready is None:
                self._cond.notify()
        if ready is not None:  # a batch is due and a run slot is free: run it here, no hand-off to a thread
            self._run_claimed(ready)
        return tasks

    def _claim(self, now: float) -> _Batch | None:
        """Take the batch due now, if fewer than ``num_batch_threads`` batches are running (call under the lock)."""
        if self._running >= self.params.num_batch_threads:
            return None
        batch, _ = self._take(now)
        if batch is not None:
            self._running += 1
        return batch

    def claim_alone(self, key: tuple, size: int, model: str | None = None, eager: bool = False) -> bool:
        """Take a run slot for a request that would be a batch on its own at once (batch_timeout_micros 0,
        or no other request of its model in flight, or ``eager``), nothing of its kind waiting, a slot
        free, and it fits one batch. ``release()`` gives the slot back.

        ``eager`` (a caller that must not block, running a short model) neither waits for requests on their
        way nor queues behind batches of its kind (which the batch threads run meanwhile), and may take one
        run slot beyond ``num_batch_threads``: merging buys a short model nothing, and queueing it would send
        it to a worker, which makes a queue for the next ones in turn, so once a queue formed every later
        request would join it."""
        if size > self.capacity or self.timeout and not eager and not self._nothing_coming(model, 1):
            return False
        with self._cond:
            # An eager caller may run beside num_batch_threads running batches: it runs on its own thread, and
            # sending it to a worker because the batch threads are busy would only lengthen their queue.
            slots = self.params.num_batch_threads + (1 if eager else 0)
            if self._stopped or self._running >= slots or key in self._queues and not eager:
                return False
            self._running += 1
            return True

    def release(self) -> None:
        with self._cond:
            self._running -= 1
            if self._queues:  # a batch thread only has something to do when a batch waits: no idle wake-ups
                self._cond.notify()

    def _run_claimed(self, batch: _Batch) -> None:
        try:
            self._run(batch)
        finally:
            self.release()

    def _take(self, now: float) -> tuple[_Batch | None, float | None]:
        """The batch to run now (oldest first), else how long until the next open batch times out."""
        best, wait = None, None
        for queue in self._queues.values():
            if not queue:
                continue
            head = queue[0]
            if head.closed or head.deadline <= now or self._stopped or self._nothing_coming(head.model, head.requests):
                if best is None or head.deadline < best[0].deadline:
                    best = (head, queue)
            else:
                wait = head.deadline - now if wait is None else min(wait, head.deadline - now)
        if best is None:
            return None, wait
        batch, queue = best
        queue.popleft()
        if not queue:  # keys with variable shapes come and go: keep only queues that hold batches
            del self._queues[batch.key]
        batch.closed = True
        return batch, None

    def _nothing_coming(self, model: str | None, requests: int) -> bool:
        """Work-conserving dispatch: the batch's ``requests`` are all of ``model``'s requests in flight."""
        return self.arrivals is not None and model is not None and self.arrivals.in_flight(model) <= requests

    def has_open_batches(self) -> bool:
        return bool(self._queues)

    def wake(self) -> None:
        """A request of a model with open batches here left: an idle batch thread re-checks what is due."""
        with self._cond:
            self._cond.notify()

    def _work(self) -> None:
        while True:
            with self._cond:
                while True:
                    now = time.monotonic()
                    batch = self._claim(now)
                    if batch is not None:
                        break
                    if self._stopped and not self._queues:
                        return
                    wait = self._take_wait(now) if self._running < self.params.num_batch_threads else None
                    self._cond.wait(wait)
            self._run_claimed(batch)

    def _take_wait(self, now: float) -> float | None:
        """Seconds until the oldest open batch times out (None: no open batch)."""
        waits = [queue[0].deadline - now for queue in self._queues.values() if queue]
        return max(0.0, min(waits)) if waits else None

    def queued_rows(self) -> int:
        """Rows waiting in batches no thread has taken yet (for tests and monitoring)."""
        with self._cond:
            return sum(batch.size for queue in self._queues.values() for batch in queue)

    def stop(self) -> None:
        """Run what is queued, then end the threads; later submits answer UNAVAILABLE."""
        with self._cond:
            self._stopped = True
            self._cond.notify_all()
        for thread in self._threads:
            if thread is not threading.current_thread():
                thread.join()


class BatchingBackend(Backend):
    """Wraps a loaded backend: ``predict`` calls are batched; everything else is delegated."""

    batching = True  # DataPlane: its calls may wait for a batch; it meters its runtime's calls itself (meter)

    def __init__(self, inner: Backend, params: BatchingParameters, metrics: Metrics | None = None,
                 arrivals: Arrivals | None = None) -> None:
        self.inner = inner
        self.params = params
        self.metrics = metrics
        self.platform = inner.platform
        self.meter = CallMeter()  # the inner runtime's calls' CPU time (DataPlane.short_call)
        self._scheduler = _Scheduler(params, self._run_batch, arrivals)

    @classmethod
    def load(cls, version_dir: Path, *, platform: str = "tensorflow",
             batching_parameters: BatchingParameters | None = None, **options) -> BatchingBackend:
        """Load ``version_dir`` with the backend for ``platform`` and wrap it (default parameters if None)."""
        inner = load_backend(platform, Path(version_dir), **options)
        return cls(inner, batching_parameters or default_parameters())

    @property
    def signatures(self) -> Mapping[str, SignatureInfo]:
        return self.inner.signatures

    def __getattr__(self, name: str):
        """Everything else (e.g. the TF backend's native ``signature_defs`` for metadata) is the inner's."""
        if name == "inner":  # not set yet (during __init__): never recurse
            raise AttributeError(name)
        return getattr(self.inner, name)

    def predict(self, signature: str, inputs: Mapping[str, np.ndarray],
                output_filter: Sequence[str] | None = None) -> dict[str, np.ndarray]:
        model = _MODEL.get()
        arrays = {k: np.asarray(v) for k, v in inputs.items()}
        size = _batch_size(arrays) if arrays else 0
        out_filter = tuple(output_filter or ())
        if size == 0:  # nothing to merge: an empty batch runs as it is
            return self.inner.predict(signature, arrays, output_filter)
        if size > self.params.max_batch_size:
            raise InvalidArgument(f"Task size {size} is larger than maximum input batch size "
                                  f"{self.params.max_batch_size}")
        no_wait = _NO_WAIT.get()
        if no_wait:  # eager: runs now as a batch of its own, or not here at all (its queue does not matter)
            if self._padded(size) == size and self._scheduler.claim_alone((), size, model, eager=True):
                return self._run_alone(signature, arrays, out_filter, size)
            raise WouldWait
        key = _queue_key(signature, out_filter, arrays, self.params.pad_variable_length_inputs)
        if self._padded(size) == size and self._scheduler.claim_alone(key, size, model):
            return self._run_alone(signature, arrays, out_filter, size)
        tasks = self._scheduler.submit(key, signature, out_filter, arrays, size, model)
        for task in tasks:
            task.done.wait()
            if task.error is not None:
                raise task.error
        if len(tasks) == 1:
            return dict(tasks[0].outputs)
        return {name: np.concatenate([t.outputs[name] for t in tasks]) for name in tasks[0].outputs}

    def _run_alone(self, signature: str, arrays: dict[str, np.ndarray], out_filter: tuple[str, ...],
                   size: int) -> dict[str, np.ndarray]:
        """A batch of exactly this request, run here (``claim_alone`` took its run slot): what the scheduler
        would do with it, without a task, a merge or a split."""
        try:
            if self.metrics is not None:
                self.metrics.batch_queued(self.params.thread_pool_name, 0.0)
                self.metrics.batch_processed(size, size)
            outputs = self._timed(signature, arrays, out_filter or None)
            split_outputs(outputs, [size], size)  # the batched path's check, so behaviour never depends on load
            return dict(outputs)
        finally:
            self._scheduler.release()

    def _timed(self, signature: str, inputs: Mapping[str, np.ndarray],
               output_filter: Sequence[str] | None) -> Mapping[str, np.ndarray]:
        sampled = self.meter.start()
        outputs = self.inner.predict(signature, inputs, output_filter)
        self.meter.stop(sampled)
        return outputs

    def queued_rows(self) -> int:
        """Rows waiting for a batch thread (0 when idle)."""
        return self._scheduler.queued_rows()

    def _padded(self, size: int) -> int:
        return next((b for b in self.params.allowed_batch_sizes if b >= size), size)

    def _run_batch(self, batch: _Batch) -> None:
        """Run one merged batch; on failure re-run each task alone so one bad request fails alone."""
        tasks = batch.tasks
        sizes = [t.size for t in tasks]
        padded = self._padded(sum(sizes))
        if self.metrics is not None:
            started = time.perf_counter()
            for task in tasks:
                self.metrics.batch_queued(self.params.thread_pool_name, (started - task.enqueued) * 1e6)
            self.metrics.batch_processed(sum(sizes), padded)
        try:
            merged = merge_inputs(tasks, padded, self.params.pad_variable_length_inputs)
            outputs = self._timed(batch.signature, merged, batch.output_filter or None)
        except Exception as exc:  # noqa: BLE001 - handed to the caller's thread, where the data plane maps it
            if len(tasks) == 1:
                tasks[0].finish(None, exc)
                return
            for task in tasks:
                self._run_batch(_Batch(batch.key, batch.signature, batch.output_filter, 0.0, [task], task.size))
            return
        try:
            parts = split_outputs(outputs, sizes, padded)
        except ServingError as exc:
            for task in tasks:
                task.finish(None, Internal(exc.message))
            return
        for task, part in zip(tasks, parts, strict=True):
            task.finish(part)

    def classify(self, signature: str, examples: Sequence[bytes]) -> dict[str, np.ndarray]:
        return self.inner.classify(signature, examples)

    def regress(self, signature: str, examples: Sequence[bytes]) -> dict[str, np.ndarray]:
        return self.inner.regress(signature, examples)

    def warmup(self) -> int:
        return self.inner.warmup()

    def unload(self) -> None:
        self._scheduler.stop()
        self.inner.unload()


def default_parameters() -> BatchingParameters:
    """TF Serving's defaults, used for ``--enable_batching`` without ``--batching_parameters_file``."""
    return batching_parameters_from_text("", "<defaults>")


class BatchingWrapper:
    """The ``ServerOptions.backend_wrapper`` for ``--enable_batching``: wraps each loaded version (and carries
    the ``Arrivals`` the DataPlane counts for work-conserving dispatch)."""

    def __init__(self, params: BatchingParameters, metrics: Metrics | None, arrivals: Arrivals | None) -> None:
        self.params, self.metrics, self.arrivals = params, metrics, arrivals

    def __call__(self, backend: Backend) -> BatchingBackend:
        return BatchingBackend(backend, self.params, self.metrics, self.arrivals)


def make_backend_wrapper(params: BatchingParameters | None, metrics: Metrics | None = None,
                         arrivals: Arrivals | None = None) -> BatchingWrapper:
    """The ``ServerOptions.backend_wrapper`` for ``--enable_batching``: batches every loaded version.

    ``params`` come from ``--batching_parameters_file`` (``serving.configfiles.load_batching_parameters``);
    None means the flag was not given, and TF Serving's defaults apply. ``metrics`` receives TF Serving's
    ``batching_session`` families (queuing latency, batch sizes, padding). ``arrivals`` (the DataPlane's)
    enables work-conserving dispatch; None keeps TF Serving's strict timeout.
    """
    return BatchingWrapper(params or default_parameters(), metrics, arrivals)
