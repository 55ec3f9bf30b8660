"""Issue 11's goals, judged from the measured rows of one ``make bench-peers`` run (never hand-entered).

Every ratio is computed within one round (both cells measured seconds apart) and reported per round; a goal
is *met* when it holds in every round, *missed* when it holds in none, and *mixed* otherwise, which on a busy
machine means "too close to call from this run".
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .results import PeerRow, select


@dataclass(frozen=True)
class PeerGoal:
    goal: str
    measured: str
    verdicts: tuple[bool, ...]  # one per round; empty: not measured

    @property
    def verdict(self) -> str:
        if not self.verdicts:
            return "not measured"
        if all(self.verdicts):
            return "met"
        return "**missed**" if not any(self.verdicts) else f"**mixed** ({sum(self.verdicts)}/{len(self.verdicts)} rounds)"


def _rounds(rows: list[PeerRow]) -> list[int]:
    return sorted({r.round for r in rows})


def _best(rows: list[PeerRow], rnd: int, workload: str, protocol: str, names: tuple[str, ...],
          level: int) -> PeerRow | None:
    """The highest-throughput server among ``names`` in that round and cell (a system's best configuration); a
    measured cell with no completed request counts, as 0 req/s."""
    found = [select(rows, workload, protocol, n, level).get(rnd) for n in names]
    return max((r for r in found if r is not None), key=lambda r: r.throughput, default=None)


def _p50(ours: PeerRow | None, base: PeerRow | None, limit: float, reference: str) -> tuple[str, bool] | None:
    """``ours`` p50 ≤ ``limit`` × ``base`` p50; ours without a completed request misses, a base without one
    cannot be compared."""
    if not (ours and base and base.requests):
        return None
    if not ours.requests:
        return f"no request completed in {ours.seconds:.0f} s", False
    ratio = ours.p50_us / base.p50_us
    return f"p50 {ours.p50_us / 1e3:.2f} ms vs {reference}{base.p50_us / 1e3:.2f} ms = {ratio:.2f}×", ratio <= limit


def _per_round(rows: list[PeerRow], goal: str, judge: Callable[[int], tuple[str, bool] | None]) -> PeerGoal:
    texts, verdicts = [], []
    for rnd in _rounds(rows):
        got = judge(rnd)
        if got is not None:
            texts.append(f"r{rnd}: {got[0]}")
            verdicts.append(got[1])
    return PeerGoal(goal, "; ".join(texts) if texts else "not measured", tuple(verdicts))


OURS_CONFIGS = ("ours", "ours+batching", "ours-2w")


# protocol -> (floor server, how the floor and MLServer are named in the verdict and the goal)
_BIG_FLOORS = {
    "rest": ("floor-threading", "ThreadingHTTPServer", "", "a ThreadingHTTPServer doing the same JSON + ORT work"),
    "grpc": ("floor-grpc", "bare grpc + ORT", " (V2 gRPC)", "a bare grpc + ORT server"),
}


def big_requests(rows: list[PeerRow], protocol: str, level: int = 16) -> PeerGoal:
    """Goal 1 on one protocol: MobileNetV2 at ``level`` vs MLServer's best configuration and the floor."""
    floor_server, floor_name, mls_note, floor_goal = _BIG_FLOORS[protocol]

    def judge(rnd: int):
        ours = _best(rows, rnd, "mobilenet", protocol, OURS_CONFIGS, level)
        mls = _best(rows, rnd, "mobilenet", protocol, ("mlserver", "mlserver+batching"), level)
        floor = _best(rows, rnd, "mobilenet", protocol, (floor_server,), level)
        if not (ours and mls and floor and mls.throughput and floor.throughput):
            return None
        a, b = ours.throughput / mls.throughput, ours.throughput / floor.throughput
        return (f"{ours.server} {ours.throughput:.1f} req/s = {a:.2f}× {mls.server}{mls_note}, {b:.2f}× {floor_name}",
                a >= 1.5 and b >= 1.0)
    return _per_round(rows, f"1. MobileNetV2 96×96 {'REST' if protocol == 'rest' else 'gRPC'} c{level}: ≥ 1.5× "
                            f"MLServer's best configuration{mls_note.replace('V2', 'its V2')} and ≥ 1.0× {floor_goal}",
                      judge)


def _p50_ratio(rows: list[PeerRow], protocol: str, floor: str, limit: float, goal: str) -> PeerGoal:
    def judge(rnd: int):
        return _p50(select(rows, "digits", protocol, "ours", 1).get(rnd),
                    select(rows, "digits", protocol, floor, 1).get(rnd), limit, "")
    return _per_round(rows, goal, judge)


def small_requests(rows: list[PeerRow]) -> list[PeerGoal]:
    return [_p50_ratio(rows, "rest", "floor-asyncio", 2.0,
                       "2. digits MLP REST c1 p50 ≤ 2× a minimal asyncio HTTP server doing the same JSON + ORT work"),
            _p50_ratio(rows, "grpc", "floor-grpc", 1.2, "2. digits MLP gRPC c1 p50 ≤ 1.2× a bare grpc + ORT server")]


def batching_pays(rows: list[PeerRow], protocol: str, level: int = 32) -> PeerGoal:
    def judge(rnd: int):
        on = select(rows, "mlp2048", protocol, "ours+batching", level).get(rnd)
        off = select(rows, "mlp2048", protocol, "ours", level).get(rnd)
        if not (on and off and off.throughput):
            return None
        ratio = on.throughput / off.throughput
        return (f"{on.throughput:.0f} vs {off.throughput:.0f} req/s = {ratio:.2f}×, p99 {on.p99_us / 1e3:.0f} vs "
                f"{off.p99_us / 1e3:.0f} ms", ratio >= 2.0 and on.p99_us < off.p99_us)
    return _per_round(rows, f"3. 784→2048→2048→10 MLP {protocol} c{level}: batching on ≥ 2× off, with a lower p99",
                      judge)


def batching_harmless(rows: list[PeerRow]) -> PeerGoal:
    """On the digits MLP, batching on ≥ 0.9× off at every measured level and protocol (the worst is shown)."""
    def judge(rnd: int):
        ratios = []
        for r in rows:
            if (r.round, r.workload, r.server) != (rnd, "digits", "ours+batching"):
                continue
            off = select(rows, "digits", r.protocol, "ours", r.concurrency).get(rnd)
            if off and off.throughput:
                ratios.append((r.throughput / off.throughput, f"{r.protocol} c{r.concurrency}"))
        if not ratios:
            return None
        worst = min(ratios)
        return f"worst {worst[0]:.2f}× ({worst[1]})", worst[0] >= 0.9
    return _per_round(rows, "3. digits MLP: batching on not slower than off by more than 10% (every level, both "
                            "protocols)", judge)


def every_core(rows: list[PeerRow], level: int = 32) -> PeerGoal:
    def judge(rnd: int):
        texts, ok = [], True
        for protocol in ("rest", "grpc"):
            two = select(rows, "digits", protocol, "ours-2w", level).get(rnd)
            one = select(rows, "digits", protocol, "ours", level).get(rnd)
            if not (two and one and one.throughput):
                return None
            ratio = two.throughput / one.throughput
            texts.append(f"{protocol} {ratio:.2f}×")
            ok = ok and ratio >= 1.5
        return ", ".join(texts), ok
    return _per_round(rows, f"4. digits MLP c{level}: 2 workers ≥ 1.5× the throughput of 1 worker (REST and gRPC)",
                      judge)


def one_large_request(rows: list[PeerRow]) -> PeerGoal:
    def judge(rnd: int):
        return _p50(select(rows, "mobilenet", "grpc", "ours", 1).get(rnd),
                    select(rows, "mobilenet", "in-process", "ort-default", 1).get(rnd), 1.3,
                    "in-process ORT (default threads) ")
    return _per_round(rows, "5. MobileNetV2 batch 1 c1 p50 (gRPC) within 1.3× of in-process ORT with ORT's default "
                            "threads", judge)


def evaluate(rows: list[PeerRow]) -> list[PeerGoal]:
    return [big_requests(rows, "rest"), big_requests(rows, "grpc"), *small_requests(rows), batching_pays(rows, "rest"),
            batching_pays(rows, "grpc"), batching_harmless(rows), every_core(rows), one_large_request(rows),
            PeerGoal("6. no regressions (tests, reliability catalogue, rollout, TF Serving compatibility)",
                     "not measured by this benchmark: `make test`, `make soak`", ())]
