"""Micro benchmark of the REST JSON codec, before (stdlib json) and after (orjson + TF float32 formatting).

``python -m serving.rest.bench_codec [--rounds N]`` prints medians and new/old ratios for: decoding a
MobileNetV2 96x96 ``instances`` body (129 kB) to the input array, and encoding a 1000x1000 float32 output.
"Before" is the previous code path, kept here only as the baseline: a whole-body regex for big numbers, then
``json.loads``; the encode widened float32 to double and wrote it with ``json.dumps`` (17 digits).
"""
from __future__ import annotations

import argparse
import json
import re
import statistics
import time
from collections.abc import Callable

import numpy as np

from clients import rest_codec

_OLD_BIG_NUMBER = re.compile(rb"[eE][+]?\d{3}|\d{309}")


def _old_loads(raw: bytes):
    if _OLD_BIG_NUMBER.search(raw):
        return json.loads(raw, parse_float=float)
    return json.loads(raw)


def _old_encode(outputs: dict) -> bytes:
    (arr,) = outputs.values()
    return json.dumps({"predictions": arr.astype(np.float64).tolist()}, separators=(",", ":"),
                      allow_nan=True).encode()


def _new_encode(outputs: dict) -> bytes:
    return rest_codec.dumps_response(rest_codec.encode_predict_response(outputs, "row"))


def _median_ms(fn: Callable[[], object], rounds: int) -> float:
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args(argv)
    rng = np.random.default_rng(0)
    image = rng.uniform(0, 1, (1, 96, 96, 3)).round(2)  # a normalized image, 2 decimals: ~130 kB of JSON
    body = json.dumps({"instances": image.tolist()}, separators=(",", ":")).encode()
    dtypes = {"input": "float32"}
    output = {"y": rng.standard_normal((1000, 1000)).astype(np.float32)}
    cases = [
        (f"decode: parse {len(body) // 1000} kB body", lambda: _old_loads(body), lambda: rest_codec.loads(body)),
        ("decode: parse + tensor", lambda: rest_codec.decode_predict_request(_old_loads(body), dtypes),
         lambda: rest_codec.decode_predict_request(rest_codec.loads(body), dtypes)),
        ("encode: 1000x1000 float32", lambda: _old_encode(output), lambda: _new_encode(output)),
    ]
    print(f"body {len(body)} bytes; {args.rounds} rounds, old and new interleaved; medians in ms")
    print(f"{'case':32} {'old':>9} {'new':>9} {'new/old':>8}")
    for name, old, new in cases:
        olds, news = [], []
        for _ in range(args.rounds):  # interleave so load on a shared machine hits both alike
            olds.append(_median_ms(old, 1))
            news.append(_median_ms(new, 1))
        o, n = statistics.median(olds), statistics.median(news)
        print(f"{name:32} {o:9.2f} {n:9.2f} {n / o:8.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
