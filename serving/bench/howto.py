"""The static "how to run the benchmarks" section of ``docs/perf/README.md`` (``make bench`` rewrites the page
around it; it describes the commands and options, so it changes with the code, not with a run)."""
from __future__ import annotations

HEADING = "## Running the benchmarks"

SECTION = HEADING + """

None of these runs in CI; each prints progress as it goes.

| command | measures | writes |
| --- | --- | --- |
| `make bench` | our server alone: gRPC and REST, TF and ORT backends, batching off/on, against in-process baselines; cold start, memory per version, client codecs | this page, `results.csv`, `latency_throughput.png` |
| `make bench-peers` | our server next to KServe, MLServer and Python floors on three workloads; issue 11's goals | `peers.md`, `peers.csv`, `peers.png`, the issue 11 goal section of this page |
| `make perf NAME=… INPUT=…` | any model on any running TF Serving-compatible server (ours or `tensorflow_model_server`), perf_analyzer style | `build/perf/perf.csv`, `build/perf/perf.png` |

### `make bench-peers` (`python -m serving.bench.peers`)

- **What runs.** Every server serves the same `model.onnx` files, exported once by our exporter, with the ONNX
  Runtime session options our ORT backend uses (read from `serving.backends.onnxruntime.session_options()`):
  ours (`python -m serving`, ORT backend; batching off, batching on, and `--num_workers=2` when
  `python -m serving --help` lists that flag); KServe 0.21's `ModelServer` with a V1 `kserve.Model` (TF
  Serving's REST API); MLServer 1.7.1 with a custom `MLModel` runtime (V2 REST and V2 gRPC), each model with
  and without adaptive batching; and three floors doing only the protocol + ORT work:
  `http.server.ThreadingHTTPServer`, a raw asyncio HTTP loop, and a bare sync grpcio
  `PredictionService/Predict`. The runtimes are the scripts in `serving/bench/peers/runtimes/`.
- **Workloads.** The digits MLP (batch 1, small request); MobileNetV2 96×96 (`keras.applications`,
  `weights=None`; a ~150 kB V1 JSON body, 110 kB as a gRPC request); a 784 → 2048 → 2048 → 10 MLP (the
  model call dominates). MobileNetV2 c1 is also run in-process with ORT's default threads (goal 5's
  reference).
- **Load.** HTTP: `wrk` (C, one thread, one keep-alive connection per client, closed loop; a Lua script posts
  the body and prints the percentiles). gRPC: `h2load` (nghttp2's C HTTP/2 load generator, one thread, one
  connection per client up to 64, closed loop): each call is a POST to `/<service>/<method>` (TF Serving's
  `Predict`; MLServer's V2 `ModelInfer`) with `content-type: application/grpc`, `te: trailers` and the
  request as one length-prefixed gRPC message; the percentiles come from its `--log-file`. **h2load counts
  HTTP-level errors only** (non-2xx, reset or timed-out streams): a failed gRPC call is an HTTP 200 whose
  `grpc-status` is in the trailers. So one real grpcio call checks each server before every gRPC point (a
  failing one is recorded as not measured), and HTTP 200 answers that carried no gRPC message (the data
  bytes short of the answers' by a tenth or more) count as errors. Without h2load, or with `--grpc-loadgen
  grpc.aio`, the gRPC points use the Python `grpc.aio` closed loop of `serving.bench.loadgen` (with a
  warning: it runs on the servers' cores and caps what they can show). The load generator's CPU and the
  server's CPU (all its processes) are reported with every point, and the page names the generators.
- **Method.** All servers run side by side; rounds are interleaved (round → workload → concurrency → server),
  so every ratio compares two points measured seconds apart in the same round, and each goal shows every
  round's ratio: met in all rounds, missed in all, or mixed.
- **Setup.** The target creates `build/peers-venv/kserve` and `build/peers-venv/mlserver` from
  `serving/bench/peers/requirements-{kserve,mlserver}.txt` (two venvs: KServe 0.21 and MLServer 1.7.1 need
  incompatible fastapi versions; both pin our onnxruntime), and installs `wrk` and `h2load` (Debian's
  `nghttp2-client`) with apt-get when they are missing (it stops with a clear message when it cannot).
- **Options** (`BENCH_ARGS="…"` on make): `--levels 1,16,32`, `--rounds 2`, `--duration 2` (seconds per
  point), `--warmup 2` (one unmeasured pass per server, workload and protocol before round 1), `--workloads
  digits,mobilenet,mlp2048`, `--servers ours,kserve,…`, `--epochs 15`, `--ours-args '--flag=value …'` (more
  flags for every `python -m serving` it starts), `--grpc-loadgen h2load|grpc.aio`, `--out docs/perf`,
  `--report-only peers.csv` (rebuild the pages from a saved run). `QUICK=1` (`--quick`) is a smoke run (levels 1,16, 1 s points, no warm-up) that
  writes to `build/bench-peers-quick/`, never to docs. The default run takes about 12–15 minutes on 2 cores
  (exports and start-up 2–4, measuring about 10; it prints its estimate before measuring).

### `make perf` (`python -m serving.bench --target HOST:PORT …`)

perf_analyzer for any model, through the public APIs only, so it works against our server and against a real
`tensorflow_model_server`:

```
make perf NAME=digits INPUT=x.npy                        # gRPC on localhost:8500
make perf NAME=digits INPUT=x.npz PROTOCOL=rest LABEL=stable BATCH=8 CONCURRENCY=1,8,32
python -m serving.bench --target host:8500 --protocol grpc --model NAME [--version N | --label L] \\
    --input x.npy|x.npz [--batch-size B] [--signature-name S] --concurrency 1,8,32 [--metrics-url URL]
```

- **Input.** `.npy`: one array for a single-input signature; `.npz`: one array per input name. Names and
  dtypes are checked against the model's metadata before anything is measured. `--batch-size B` sends B rows
  per request (the file's rows are cycled); throughput is in inferences/s (rows), as perf_analyzer counts.
- **Method.** Per level, a closed loop of *concurrency* clients: `--warmup` s, then `--duration` s windows
  until two agree within `--stability` (at most `--trials`). One line per level, perf_analyzer's format.
- **Server side.** Before and after each level it scrapes TF Serving's Prometheus families
  (`:tensorflow:serving:request_latency`, `runtime_latency`, `batching_session:queuing_latency`) and prints
  the mean request, queue and compute time per request inside the server (the level's warm-up included), with
  whatever families the server has. The page is `http://HOST:PORT/monitoring/prometheus/metrics` by default
  over REST; over gRPC pass `--metrics-url` (the server needs a `--monitoring_config_file` enabling Prometheus).
- **Output.** `perf.csv` (client and server columns) and `perf.png` under `--out` (`OUT=`; default
  `build/perf`). Exit status 0; 1 when requests failed during the run; 2 for bad options or a model the server
  cannot answer (one `error:` line, no traceback).
"""
