"""The memory timeline: time on x, arena address on y, one rectangle per tensor.

A dashed line marks the lower bound: the distance between it and the tallest
rectangle is all a better placement could still win.
"""

from __future__ import annotations

from pathlib import Path


def plot_timeline(plan: dict, path: Path, title: str = "") -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.collections import PatchCollection
    from matplotlib.patches import Rectangle

    mib = 2**20
    buffers = plan["buffers"]
    fig, ax = plt.subplots(figsize=(12, 5), dpi=120)
    rects = [Rectangle((b["start"], b["offset"] / mib), b["end"] - b["start"], b["size"] / mib) for b in buffers]
    colors = [plt.cm.tab20(i % 20) for i in range(len(rects))]
    ax.add_collection(PatchCollection(rects, facecolors=colors, edgecolors="black", linewidths=0.3))
    live = [0.0] * (max(plan["num_steps"], 1) + 1)
    for b in buffers:
        for step in range(b["start"], b["end"]):
            live[step] += b["size"] / mib
    ax.step(range(len(live)), live, where="post", color="gray", linewidth=1, label="live bytes")
    lb, arena = plan["lower_bound_bytes"] / mib, plan["arena_bytes"] / mib
    ax.axhline(lb, color="red", linestyle="--", linewidth=1, label=f"lower bound {lb:.3f} MiB")
    ax.axhline(arena, color="black", linewidth=1, label=f"arena {arena:.3f} MiB ({plan['planner']})")
    ax.set_xlim(0, max(plan["num_steps"], 1))
    ax.set_ylim(0, max(arena, lb) * 1.08 or 1)
    ax.set_xlabel("execution step")
    ax.set_ylabel("arena offset (MiB)")
    ax.set_title(title or "memory timeline")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small")
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
