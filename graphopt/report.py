"""How a plan is shown: the human summary and the `inspect --json` object."""

from __future__ import annotations

INSPECT_KEYS = (
    "arena_bytes", "lower_bound_bytes", "naive_bytes", "tvm_stock_bytes", "pool_bytes",
    "params_bytes", "output_bytes", "planner", "optimal", "planner_seconds", "num_tensors",
    "num_steps", "valid",
)


def inspect_json(manifest: dict, plan: dict) -> dict:
    """One flat object: the plan's figures plus what identifies the artifact."""
    out = {key: plan[key] for key in INSPECT_KEYS}
    out["reorder"] = plan.get("reorder", {})
    out["concat_in_place"] = plan.get("concat_in_place", {})
    if "weights" in plan:
        out["weights"] = plan["weights"]
    out["fallback"] = plan.get("fallback", {"kernels": []})  # artifacts from before fallback kernels have none
    if "shape_range" in plan:
        out["shape_range"] = plan["shape_range"]
    out.update(id=manifest["id"], build_id=manifest["build_id"], target=manifest["target"],
               inputs=manifest["inputs"], outputs=manifest["outputs"])
    return out


def _mib(n: int) -> str:
    return f"{n / 2**20:.3f} MiB"


def _ratio(a: int, b: int) -> str:
    return f"{a / b:.3f}x" if b else "n/a"


def summary_lines(plan: dict) -> list[str]:
    arena, lb = plan["arena_bytes"], plan["lower_bound_bytes"]
    cert = "optimal" if plan.get("optimal") else f"gap {(arena / lb - 1) * 100:.2f}% over lower bound" if lb else "empty"
    return [
        f"planner        {plan['planner']} ({cert}, {plan['planner_seconds']:.2f} s)",
        f"tensors/steps  {plan['num_tensors']} planned tensors over {plan['num_steps']} steps",
        f"arena          {_mib(arena)}  ({arena} bytes)   valid: {plan['valid']}",
        f"lower bound    {_mib(lb)}  arena/LB {_ratio(arena, lb)}",
        f"TVM stock      {_mib(plan['tvm_stock_bytes'])}  arena/stock {_ratio(arena, plan['tvm_stock_bytes'])}",
        f"caching pool   {_mib(plan['pool_bytes'])}  arena/pool {_ratio(arena, plan['pool_bytes'])}",
        f"no reuse       {_mib(plan['naive_bytes'])}  arena/naive {_ratio(arena, plan['naive_bytes'])}",
        f"params         {_mib(plan['params_bytes'])}   outputs {_mib(plan['output_bytes'])}"
        + _weights_note(plan.get("weights")),
        _reorder_line(plan.get("reorder", {})),
        _concat_line(plan.get("concat_in_place")),
        _fallback_line(plan.get("fallback")),
    ] + range_lines(plan.get("shape_range"))


def range_lines(record: dict | None) -> list[str]:
    """A range artifact (graphopt.analysis.range_plan): the arena and lower bound at both ends of
    the range, how the plan was proven, and what its symbolic kernels got."""
    if not record:
        return []
    ranges = ", ".join(f"{name}={lo}..{hi}" for name, (lo, hi) in record["symbols"].items())
    head = (f"shape range    {ranges}: plan proven ({record['proof']}), validated at {record['points_checked']} "
            "points (corners + samples)")
    lines = [head]
    for end in ("at_max", "at_min"):
        point = record[end]
        where = ", ".join(f"{k}={v}" for k, v in point["point"].items())
        lines.append(f"  {end[3:]} ({where})  arena used {_mib(point['arena_bytes'])}   "
                     f"lower bound {_mib(point['lower_bound_bytes'])}")
    kernels = record.get("kernels", {})
    if kernels:
        rules = "; ".join(f"{n} {label}" for label, n in kernels.get("by_rule", {}).items())
        default = kernels.get("tvm_default", [])
        lines.append(f"  kernels      {kernels.get('symbolic', 0)} symbolic: {rules or 'none'}"
                     + (f"; TVM default (unscheduled): {', '.join(default)}" if default else ""))
    return lines


def _fallback_line(record: dict | None) -> str:
    """Which nodes run as onnxruntime kernels (graphopt.runtime.fallback), counted by op."""
    kernels = (record or {}).get("kernels", [])
    if not kernels:
        return "fallback       none (every node compiled by TVM)"
    counts: dict[str, int] = {}
    for kernel in kernels:
        domain = kernel.get("domain") or "ai.onnx"
        op = kernel["op_type"] if domain == "ai.onnx" else f"{domain}:{kernel['op_type']}"
        counts[op] = counts.get(op, 0) + 1
    ops = ", ".join(f"{op} x{n}" if n > 1 else op for op, n in sorted(counts.items()))
    return f"fallback       {len(kernels)} node(s) run by onnxruntime: {ops}"


def _weights_note(record: dict | None) -> str:
    """Training artifacts and artifacts from before compile-time weight preparation have no record."""
    if not record or not record.get("prepared_at_compile"):
        return ""
    note = f"   ({record['prepared_at_compile']} of {record['stored']} prepared at compile time)"
    if "prepared_bytes_added" in record:  # artifacts from before the byte counts have none
        note += f" {_signed_mib(record['prepared_bytes_added'])} over the imported {_mib(record['imported_bytes'])}"
    return note


def _signed_mib(n: int) -> str:
    return ("+" if n >= 0 else "-") + _mib(abs(n))


def _reorder_line(record: dict) -> str:
    before, after = record.get("lower_bound_before"), record.get("lower_bound_after")
    if before and after and after < before:
        return f"reorder        {record['method']}: lower bound {_mib(before)} -> {_mib(after)} ({after / before:.3f}x)"
    why = f"; {record['why']}" if record.get("why") else ""
    return f"reorder        {record.get('method', 'off')} (kernel order unchanged{why})"


def _concat_line(record: dict | None) -> str:
    """Artifacts from before concatenation in place have no record."""
    if not record:
        return "concat         (no record)"
    if record.get("off"):
        return f"concat         copies kept ({record.get('why', '--no-concat-in-place')})"
    kept = record.get("kept_for_memory")
    why = f"; {kept} kept as copies: in place they would raise the peak" if kept else ""
    return f"concat         {record['elided']} of {record['concatenations']} concatenations in place (no copy){why}"


def swap_stats(plan: dict) -> dict:
    """inspect --json fields about memory under a budget, from plan.json alone."""
    swaps, recomputes = plan.get("swaps", []), plan.get("recomputes", [])
    noswap = plan.get("predicted_noswap_step_seconds")
    return {
        "peak_bytes": int(plan["arena_bytes"]),
        "budget_bytes": plan.get("budget_bytes"),
        "predicted_step_seconds": plan.get("predicted_step_seconds", noswap),
        "predicted_noswap_step_seconds": noswap,
        "swapped_bytes": int(sum(s["bytes"] for s in swaps)),
        "recomputed_bytes": int(sum(r["bytes"] for r in recomputes)),
    }
