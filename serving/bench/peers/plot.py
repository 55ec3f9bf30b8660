"""``docs/perf/peers.png``: per workload, req/s and p99 against concurrency for every server (round medians).
Solid lines REST, dashed gRPC; ours in blues, peers in warm colours, floors in greys."""
from __future__ import annotations

from pathlib import Path

from .results import PeerRow, cells

COLORS = {"ours": "tab:blue", "ours+batching": "tab:cyan", "ours-2w": "navy", "kserve": "tab:orange",
          "mlserver": "tab:red", "mlserver+batching": "tab:pink", "floor-threading": "dimgray",
          "floor-asyncio": "silver", "floor-grpc": "black"}


def plot(rows: list[PeerRow], path: Path, title: str) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    measured = [c for c in cells(rows) if c.protocol != "in-process"]
    workloads = list(dict.fromkeys(c.workload for c in measured))
    fig, axes = plt.subplots(2, max(len(workloads), 1), figsize=(6 * max(len(workloads), 1), 9), squeeze=False)
    for col, workload in enumerate(workloads):
        series: dict[tuple[str, str], list] = {}
        for c in measured:
            if c.workload == workload:
                series.setdefault((c.protocol, c.server), []).append(c)
        for (protocol, server), points in series.items():
            points.sort(key=lambda c: c.concurrency)
            style = dict(color=COLORS.get(server, "green"), linestyle="-" if protocol == "rest" else "--",
                         marker="o" if protocol == "rest" else "s", label=f"{server} ({protocol})")
            done = [c for c in points if c.throughput > 0]  # a point with no completed request has no latency
            axes[0][col].plot([c.concurrency for c in done], [c.throughput for c in done], **style)
            axes[1][col].plot([c.concurrency for c in done], [c.p99_us / 1e3 for c in done], **style)
        axes[0][col].set_title(workload)
        for row, label in ((0, "req/s"), (1, "p99 latency (ms)")):
            ax = axes[row][col]
            ax.set_xscale("log", base=2)
            ax.set_yscale("log")
            ax.set_xlabel("concurrency (closed loop)")
            ax.set_ylabel(label)
            ax.grid(True, which="both", alpha=0.3)
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=6, fontsize=8)
    fig.suptitle(title)
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return Path(path)
