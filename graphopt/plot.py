"""The memory timeline: time on x, arena address on y, one rectangle per tensor.

A dashed line marks the lower bound: the distance between it and the tallest
rectangle is all a better placement could still win. Under a memory budget a
second panel shows what left the device: each swap as a bar on the device-to-
host lane (from its use to the step whose range it frees) and on the host-to-
device lane (from the step where it is loaded to its next use), each
recomputation as a bar over the steps the tensor is absent with a mark where
its producer runs again; the budget is a line in the upper panel.
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
    events = bool(plan.get("swaps") or plan.get("recomputes"))
    if events:
        fig, (ax, lanes) = plt.subplots(2, 1, figsize=(12, 6.5), dpi=120, sharex=True,
                                        gridspec_kw={"height_ratios": [4, 1]})
    else:
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
    if plan.get("budget_bytes"):
        ax.axhline(plan["budget_bytes"] / mib, color="purple", linestyle=":", linewidth=1.2,
                   label=f"budget {plan['budget_bytes'] / mib:.3f} MiB")
    ax.set_xlim(0, max(plan["num_steps"], 1))
    ax.set_ylim(0, max(arena, lb, (plan.get("budget_bytes") or 0) / mib) * 1.08 or 1)
    if events:
        _draw_lanes(lanes, plan)
        lanes.set_xlabel("execution step")
    else:
        ax.set_xlabel("execution step")
    ax.set_ylabel("arena offset (MiB)")
    ax.set_title(title or "memory timeline")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small")
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)


def _draw_lanes(ax, plan: dict) -> None:
    """Copy engines and recomputations as bars on three lanes, by step."""
    rows = {"device->host": 2, "host->device": 1, "recompute": 0}
    for s in plan.get("swaps", []):
        ax.broken_barh([(s["after"] + 1, max(s["free_at"] - s["after"] - 1, 0.3))], (rows["device->host"] - 0.35, 0.7),
                       facecolors="tab:orange")
        ax.broken_barh([(s["load_at"], max(s["before"] - s["load_at"], 0.3))], (rows["host->device"] - 0.35, 0.7),
                       facecolors="tab:blue")
    for r in plan.get("recomputes", []):
        ax.broken_barh([(r["after"] + 1, r["before"] - r["after"] - 1)], (rows["recompute"] - 0.2, 0.4),
                       facecolors="lightgray", edgecolors="gray")
        ax.plot([r["before"]], [rows["recompute"]], marker="v", color="tab:red", markersize=5)
    ax.set_yticks(list(rows.values()), list(rows))
    ax.set_ylim(-0.6, 2.6)
    ax.set_title(f"{len(plan.get('swaps', []))} swaps, {len(plan.get('recomputes', []))} recomputations "
                 f"(predicted step {plan.get('predicted_step_seconds', 0) * 1e3:.3f} ms vs "
                 f"{plan.get('predicted_noswap_step_seconds', 0) * 1e3:.3f} ms without)", fontsize="small")
