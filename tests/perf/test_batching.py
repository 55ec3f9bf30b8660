"""BatchingBackend over a real ONNX Runtime session: exact split-back, padding, queue limits, timeouts, and
error isolation. ``Recording`` sits between the batcher and the runtime only to observe (and, for the
timing-sensitive cases, hold) the merged calls; the answers always come from ONNX Runtime."""
from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from serving.backends import Backend
from serving.backends.onnxruntime import OnnxRuntimeBackend
from serving.batching import (
    QUEUE_FULL,
    Arrivals,
    BatchingBackend,
    WouldWait,
    make_backend_wrapper,
    without_waiting,
)
from serving.configfiles import batching_parameters_from_text
from serving.errors import Internal, InvalidArgument, ResourceExhausted, Unavailable

POISON = -999.0
SIG = "serving_default"


class Recording(Backend):
    """Delegates to a real backend; records every call's rows, can hold calls at a gate, refuses POISON rows."""

    platform = "onnxruntime"

    def __init__(self, inner: Backend) -> None:
        self.inner = inner
        self.sizes: list[int] = []
        self.gate: threading.Event | None = None
        self.entered = threading.Event()

    @classmethod
    def load(cls, version_dir, **options):
        return cls(OnnxRuntimeBackend.load(version_dir, **options))

    @property
    def signatures(self):
        return self.inner.signatures

    def predict(self, signature, inputs, output_filter=None):
        first = next(iter(inputs.values()))
        self.sizes.append(first.shape[0])
        if self.gate is not None:
            self.entered.set()
            assert self.gate.wait(10), "test gate never opened"
        if (first == POISON).any():
            raise InvalidArgument("poisoned row")
        return self.inner.predict(signature, inputs, output_filter)


def params(text: str):
    return batching_parameters_from_text(text)


@pytest.fixture
def make(request):
    """``make(model_dir, params_text)`` -> (BatchingBackend, Recording); unloaded after the test."""
    made = []

    def factory(model_dir, text):
        recording = Recording.load(model_dir)
        batching = BatchingBackend(recording, params(text))
        made.append(batching)
        return batching, recording

    yield factory
    for batching in made:
        batching.unload()


def wait_queued(batching: BatchingBackend, rows: int) -> None:
    deadline = time.monotonic() + 10
    while batching.queued_rows() < rows:
        assert time.monotonic() < deadline, f"only {batching.queued_rows()} of {rows} rows were queued"
        time.sleep(0.001)


def rows(seed: int, n: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, 8)).astype(np.float32)


def test_concurrent_requests_get_exactly_their_own_rows(make, dense):
    batching, recording = make(dense, "max_batch_size { value: 16 } batch_timeout_micros { value: 5000 } "
                                      "num_batch_threads { value: 2 }")
    direct = OnnxRuntimeBackend.load(dense)

    def call(i):
        x = rows(i, 1 + i % 5)
        return x, batching.predict(SIG, {"x": x})["y"]

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(call, range(200)))
    for x, y in results:
        np.testing.assert_allclose(y, direct.predict(SIG, {"x": x})["y"], rtol=1e-6, atol=1e-6)
    assert sum(recording.sizes) == sum(x.shape[0] for x, _ in results)  # no padding configured
    assert max(recording.sizes) > 5, "requests were never merged"


def test_batches_are_padded_to_allowed_sizes_and_the_padding_is_dropped(make, dense):
    batching, recording = make(dense, "max_batch_size { value: 8 } batch_timeout_micros { value: 2000 } "
                                      "allowed_batch_sizes: 2 allowed_batch_sizes: 4 allowed_batch_sizes: 8")
    direct = OnnxRuntimeBackend.load(dense)
    with ThreadPoolExecutor(6) as pool:
        results = list(pool.map(lambda i: (rows(i, 1 + i % 3), i), range(60)))
        outputs = list(pool.map(lambda xi: batching.predict(SIG, {"x": xi[0]})["y"], results))
    for (x, _), y in zip(results, outputs, strict=True):
        assert y.shape == (x.shape[0], 3)
        np.testing.assert_allclose(y, direct.predict(SIG, {"x": x})["y"], rtol=1e-6, atol=1e-6)
    assert set(recording.sizes) <= {2, 4, 8}


def test_a_full_queue_answers_resource_exhausted(make, dense):
    batching, recording = make(dense, "max_batch_size { value: 2 } num_batch_threads { value: 1 } "
                                      "max_enqueued_batches { value: 1 }")
    recording.gate = threading.Event()
    with ThreadPoolExecutor(3) as pool:
        running = pool.submit(batching.predict, SIG, {"x": rows(0, 2)})
        assert recording.entered.wait(10)  # the only batch thread is now busy
        queued = [pool.submit(batching.predict, SIG, {"x": rows(i, 2)}) for i in (1, 2)]
        deadline = time.monotonic() + 10
        while not any(f.done() for f in queued):
            assert time.monotonic() < deadline
            time.sleep(0.001)
        recording.gate.set()
        errors = [f.exception(10) for f in queued]
        assert running.result(10)["y"].shape == (2, 3)
    refused = [e for e in errors if e is not None]
    assert len(refused) == 1 and isinstance(refused[0], ResourceExhausted)
    assert refused[0].message == QUEUE_FULL and refused[0].http_status == 429


def test_an_open_batch_is_flushed_when_its_timeout_passes(make, dense):
    batching, recording = make(dense, "max_batch_size { value: 64 } batch_timeout_micros { value: 200000 } "
                                      "num_batch_threads { value: 1 }")
    start = time.monotonic()
    y = batching.predict(SIG, {"x": rows(0, 1)})["y"]
    elapsed = time.monotonic() - start
    assert y.shape == (1, 3) and recording.sizes == [1]
    assert 0.19 <= elapsed < 5, f"a lone request waited {elapsed:.3f} s for a 0.2 s batch timeout"


def test_requests_within_the_timeout_share_one_call(make, dense):
    batching, recording = make(dense, "max_batch_size { value: 64 } batch_timeout_micros { value: 300000 } "
                                      "num_batch_threads { value: 1 }")
    with ThreadPoolExecutor(3) as pool:
        futures = [pool.submit(batching.predict, SIG, {"x": rows(i, i)}) for i in (1, 2, 3)]
        shapes = [f.result(10)["y"].shape for f in futures]
    assert shapes == [(1, 3), (2, 3), (3, 3)] and recording.sizes == [6]


def test_one_bad_request_does_not_fail_the_requests_batched_with_it(make, dense):
    batching, recording = make(dense, "max_batch_size { value: 16 } num_batch_threads { value: 1 }")
    direct = OnnxRuntimeBackend.load(dense)
    recording.gate = threading.Event()
    bad = rows(99, 2)
    bad[1, 3] = POISON
    with ThreadPoolExecutor(6) as pool:
        first = pool.submit(batching.predict, SIG, {"x": rows(0, 1)})
        assert recording.entered.wait(10)
        good = [rows(i, i) for i in (1, 2, 3)]
        futures = [pool.submit(batching.predict, SIG, {"x": x}) for x in good]
        poisoned = pool.submit(batching.predict, SIG, {"x": bad})
        wait_queued(batching, 8)  # all four requests sit in one open batch behind the held call
        recording.gate.set()
        assert first.result(10)["y"].shape == (1, 3)
        for x, future in zip(good, futures, strict=True):
            np.testing.assert_allclose(future.result(10)["y"], direct.predict(SIG, {"x": x})["y"], rtol=1e-6)
        with pytest.raises(InvalidArgument, match="poisoned row"):
            poisoned.result(10)
    assert recording.sizes[:2] == [1, 8], "the four requests were not merged into one call"


def test_variable_length_inputs_are_padded_with_their_first_element(make, ragged_identity):
    batching, recording = make(ragged_identity, "max_batch_size { value: 8 } num_batch_threads { value: 1 } "
                                                "pad_variable_length_inputs: true")
    recording.gate = threading.Event()
    with ThreadPoolExecutor(3) as pool:
        held = pool.submit(batching.predict, SIG, {"x": np.ones((1, 1), np.float32)})
        assert recording.entered.wait(10)
        long = pool.submit(batching.predict, SIG, {"x": np.array([[1, 2, 3]], np.float32)})
        short = pool.submit(batching.predict, SIG, {"x": np.array([[5], [7]], np.float32)})
        wait_queued(batching, 3)
        recording.gate.set()
        held.result(10)
        np.testing.assert_array_equal(long.result(10)["y"], [[1, 2, 3]])
        np.testing.assert_array_equal(short.result(10)["y"], [[5, 5, 5], [7, 5, 5]])
    assert recording.sizes == [1, 3]


def test_different_lengths_never_merge_without_padding(make, ragged_identity):
    batching, recording = make(ragged_identity, "max_batch_size { value: 8 } batch_timeout_micros { value: 100000 }")
    with ThreadPoolExecutor(2) as pool:
        long = pool.submit(batching.predict, SIG, {"x": np.array([[1, 2, 3]], np.float32)})
        short = pool.submit(batching.predict, SIG, {"x": np.array([[5]], np.float32)})
        np.testing.assert_array_equal(long.result(10)["y"], [[1, 2, 3]])
        np.testing.assert_array_equal(short.result(10)["y"], [[5]])
    assert sorted(recording.sizes) == [1, 1]


def test_large_batch_splitting_cuts_a_big_request_and_joins_the_answer(make, dense):
    batching, recording = make(dense, "max_batch_size { value: 8 } enable_large_batch_splitting { value: true } "
                                      "max_execution_batch_size { value: 4 } allowed_batch_sizes: 2 "
                                      "allowed_batch_sizes: 4 num_batch_threads { value: 1 }")
    x = rows(5, 7)
    y = batching.predict(SIG, {"x": x})["y"]
    np.testing.assert_allclose(y, OnnxRuntimeBackend.load(dense).predict(SIG, {"x": x})["y"], rtol=1e-6)
    assert recording.sizes == [4, 4]  # 4 + 3 rows, the 3 padded to the allowed size 4


def test_requests_batching_cannot_take_are_invalid(make, dense):
    batching, _ = make(dense, "max_batch_size { value: 8 }")
    with pytest.raises(InvalidArgument, match="Task size 9 is larger than maximum input batch size 8"):
        batching.predict(SIG, {"x": rows(0, 9)})
    with pytest.raises(InvalidArgument, match="at least one dimension"):
        batching.predict(SIG, {"x": np.float32(1.0)})
    with pytest.raises(InvalidArgument, match="equal 0th-dimension size"):
        batching.predict(SIG, {"x": rows(0, 2), "z": rows(0, 3)})


def test_an_output_without_batch_dimension_is_an_internal_error(make, total_sum):
    batching, _ = make(total_sum, "max_batch_size { value: 8 }")
    with pytest.raises(Internal, match="0th dimension does not equal"):
        batching.predict(SIG, {"x": np.ones((2, 2), np.float32)})


def test_unloaded_backend_refuses_new_requests(dense):
    batching = make_backend_wrapper(None)(OnnxRuntimeBackend.load(dense))
    assert batching.params.max_batch_size == 1000 and batching.params.max_enqueued_batches == 10
    assert batching.predict(SIG, {"x": rows(0, 2)})["y"].shape == (2, 3)
    batching.unload()
    with pytest.raises(Unavailable):
        batching.predict(SIG, {"x": rows(0, 1)})


def test_a_lone_request_runs_on_its_own_thread_and_later_ones_merge_behind_it(make, dense):
    """timeout 0: a request finding the queue idle runs at once on its caller's thread (no hand-off); while it
    holds the only run slot (num_batch_threads 1), the next requests wait in one batch and run merged."""
    batching, recording = make(dense, "max_batch_size { value: 8 } num_batch_threads { value: 1 }")
    recording.gate = threading.Event()
    callers: list[str] = []
    inner_predict = recording.predict

    def spy(signature, inputs, output_filter=None):
        callers.append(threading.current_thread().name)
        return inner_predict(signature, inputs, output_filter)

    recording.predict = spy
    with ThreadPoolExecutor(4, thread_name_prefix="caller") as pool:
        first = pool.submit(batching.predict, SIG, {"x": rows(0, 1)})
        assert recording.entered.wait(10)
        rest = [pool.submit(batching.predict, SIG, {"x": rows(i, 1)}) for i in (1, 2, 3)]
        wait_queued(batching, 3)  # the slot is taken: they queue instead of running
        recording.gate.set()
        assert first.result(10)["y"].shape == (1, 3)
        assert [f.result(10)["y"].shape for f in rest] == [(1, 3)] * 3
    assert recording.sizes == [1, 3]
    assert callers[0].startswith("caller")  # the lone request ran on the thread that decoded it


# ------------------------------------------------------------------ work-conserving dispatch (Arrivals)
@pytest.fixture
def conserving(dense):
    """A BatchingBackend with Arrivals (the server's default) and a 1 s timeout, so any wait shows."""
    arrivals = Arrivals()
    recording = Recording.load(dense)
    batching = BatchingBackend(recording, params("max_batch_size { value: 64 } batch_timeout_micros { value: "
                                                 "1000000 } num_batch_threads { value: 1 }"), None, arrivals)
    yield batching, recording, arrivals
    batching.unload()


def scoped_call_seconds(batching: BatchingBackend, arrivals: Arrivals, seed: int = 0) -> float:
    """Seconds one request for model "m", in its Arrivals scope, takes through ``batching``."""
    start = time.monotonic()
    with arrivals.scope("m"):
        assert batching.predict(SIG, {"x": rows(seed, 1)})["y"].shape == (1, 3)
    return time.monotonic() - start


def test_a_lone_request_with_nothing_coming_never_waits_for_the_timeout(conserving):
    batching, recording, arrivals = conserving
    for i in range(5):
        assert scoped_call_seconds(batching, arrivals, i) < 0.5, "a lone request waited for the 1 s batch timeout"
    assert recording.sizes == [1] * 5 and arrivals.in_flight("m") == 0


def test_a_batch_waits_for_a_request_still_on_its_way_and_merges_it(conserving):
    """One request queued while another for the same model is still decoding: the batch waits for it (not the
    timeout) and both run in one call."""
    batching, recording, arrivals = conserving
    decoding, first_queued = threading.Event(), threading.Event()

    def slow_decoder() -> dict:
        with arrivals.scope("m"):
            decoding.set()
            assert first_queued.wait(10)
            wait_queued(batching, 1)
            return batching.predict(SIG, {"x": rows(2, 2)})["y"].shape

    def first() -> dict:
        with arrivals.scope("m"):
            assert decoding.wait(10)
            first_queued.set()
            return batching.predict(SIG, {"x": rows(1, 1)})["y"].shape

    start = time.monotonic()
    with ThreadPoolExecutor(2) as pool:
        a, b = pool.submit(first), pool.submit(slow_decoder)
        assert (a.result(10), b.result(10)) == ((1, 3), (2, 3))
    assert recording.sizes == [3], "the request on its way was not merged"
    assert time.monotonic() - start < 0.9, "the batch waited for its timeout, not for the request"


def test_a_batch_waiting_for_company_runs_as_soon_as_the_other_request_leaves(conserving):
    """A request in flight but not coming to the batcher (it fails, or is answered some other way) holds an
    open batch only until it leaves, not for the whole timeout."""
    batching, recording, arrivals = conserving
    queued = threading.Event()

    def other() -> None:
        with arrivals.scope("m"):
            wait_queued(batching, 1)
            queued.set()
            time.sleep(0.1)  # then leaves without a predict

    def first() -> tuple:
        with arrivals.scope("m"):
            return batching.predict(SIG, {"x": rows(1, 1)})["y"].shape

    start = time.monotonic()
    with ThreadPoolExecutor(2) as pool:
        b = pool.submit(other)
        deadline = time.monotonic() + 10
        while arrivals.in_flight("m") < 1:
            assert time.monotonic() < deadline
            time.sleep(0.001)
        a = pool.submit(first)
        assert a.result(10) == (1, 3)
        b.result(10)
    elapsed = time.monotonic() - start
    assert queued.is_set() and 0.09 < elapsed < 0.9, f"answered after {elapsed:.2f} s (timeout 1 s)"
    assert recording.sizes == [1]


def test_a_request_that_fails_before_the_batcher_stops_counting(conserving):
    batching, recording, arrivals = conserving
    with pytest.raises(InvalidArgument), arrivals.scope("m"):
        raise InvalidArgument("bad JSON")  # never reaches predict
    assert arrivals.in_flight("m") == 0
    assert scoped_call_seconds(batching, arrivals) < 0.5


def test_requests_for_another_model_do_not_hold_a_batch(conserving):
    batching, recording, arrivals = conserving
    with arrivals.scope("other"):
        assert scoped_call_seconds(batching, arrivals) < 0.5


def test_calls_outside_any_request_keep_the_timeout(conserving):
    """Warmup replays run outside a request: they have no Arrivals scope and wait as TF Serving's scheduler."""
    batching, recording, arrivals = conserving
    start = time.monotonic()
    batching.predict(SIG, {"x": rows(0, 1)})
    assert time.monotonic() - start >= 0.95


def test_the_wrapper_carries_the_arrivals_and_wraps_with_them(dense):
    arrivals = Arrivals()
    wrapper = make_backend_wrapper(params("num_batch_threads { value: 3 }"), None, arrivals)
    wrapped = wrapper(OnnxRuntimeBackend.load(dense))
    try:
        assert wrapper.arrivals is arrivals and wrapped._scheduler.arrivals is arrivals
        assert make_backend_wrapper(None).arrivals is None  # --batching_strict_timeout
    finally:
        wrapped.unload()


def test_without_waiting_a_call_runs_at_once_or_raises_before_running(conserving):
    """What the REST event loop relies on to run a short batched model inline: the call runs at once as a batch
    of its own, even with other requests on their way and beside a running batch (one slot more than
    num_batch_threads); only with every slot taken it raises WouldWait, runs nothing, and counts as coming
    again."""
    batching, recording, arrivals = conserving
    with arrivals.scope("m"), arrivals.scope("m"), without_waiting():  # another request for m is on its way
        assert batching.predict(SIG, {"x": rows(0, 1)})["y"].shape == (1, 3)
    assert recording.sizes == [1]
    recording.gate = threading.Event()
    with ThreadPoolExecutor(2) as pool:
        def eager() -> tuple:
            with without_waiting():
                return batching.predict(SIG, {"x": rows(2, 1)})["y"].shape
        running = pool.submit(batching.predict, SIG, {"x": rows(1, 1)})  # takes the one batch slot
        assert recording.entered.wait(10)
        recording.entered.clear()
        beside = pool.submit(eager)  # takes the extra slot
        assert recording.entered.wait(10)
        with arrivals.scope("m"), without_waiting():
            with pytest.raises(WouldWait):
                batching.predict(SIG, {"x": rows(3, 1)})
            assert arrivals.in_flight("m") == 1, "the request that will be retried is no longer in flight"
        recording.gate.set()
        assert running.result(10)["y"].shape == beside.result(10) == (1, 3)
    assert recording.sizes == [1, 1, 1], "a call that raised WouldWait ran"
    assert arrivals.in_flight("m") == 0


def test_a_batched_models_runtime_time_is_measured_without_the_wait(conserving):
    batching, recording, arrivals = conserving
    assert batching.meter.us is None
    with arrivals.scope("m"):
        batching.predict(SIG, {"x": rows(0, 1)})
    assert batching.meter.us is not None and 0 < batching.meter.us < 0.5e6
