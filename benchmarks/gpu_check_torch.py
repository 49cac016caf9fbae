"""The same model in PyTorch eager, for the "default pool" baseline of benchmarks/gpu_check.py.

No ONNX on the GPU machine and no hand-written twin of the architecture that
could drift: `prepare` (here) writes the model's graph as JSON (nodes, attributes)
and its weights as .npz (`export_graph`); `TorchGraph` (there) executes exactly
those nodes with torch.nn.functional, in graph order, dropping each tensor after
its last use as eager PyTorch code would. The outputs are compared with the same
CPU reference as the TVM artifacts, so a conversion mistake shows as a mismatch.

Ops: the ones graphopt's example and light CNNs use (Conv, Relu, MaxPool,
AveragePool, GlobalAveragePool, Concat, Flatten, Reshape, Add, Mul, MatMul, Gemm,
Dropout (inference: identity), Softmax, Constant). Anything else is refused when
exporting, here, not discovered there.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

SUPPORTED = ("Conv", "Relu", "MaxPool", "AveragePool", "GlobalAveragePool", "Concat", "Flatten", "Reshape", "Add",
             "Mul", "MatMul", "Gemm", "Dropout", "Softmax", "Constant", "Identity")


def export_graph(model, out_dir: Path) -> dict:
    """ONNX model -> graph.json + weights.npz (runs here, with onnx)."""
    from onnx import helper, numpy_helper

    graph = model.graph
    unsupported = sorted({n.op_type for n in graph.node} - set(SUPPORTED))
    if unsupported:
        raise ValueError(f"the torch baseline does not implement {', '.join(unsupported)}")
    weights = {f"w{i}": numpy_helper.to_array(t) for i, t in enumerate(graph.initializer)}
    names = {t.name: f"w{i}" for i, t in enumerate(graph.initializer)}
    nodes = []
    for node in graph.node:
        attrs = {}
        for a in node.attribute:
            if a.type == a.TENSOR:
                key = f"c{len(weights)}"
                weights[key] = numpy_helper.to_array(a.t)
                attrs[a.name] = {"weight": key}
            else:
                value = helper.get_attribute_value(a)
                attrs[a.name] = value.decode() if isinstance(value, bytes) else list(value) if isinstance(value, (list, tuple)) else value
        nodes.append({"op": node.op_type, "inputs": list(node.input), "outputs": list(node.output), "attrs": attrs})
    inits = set(names)
    spec = {"inputs": [i.name for i in graph.input if i.name not in inits], "outputs": [o.name for o in graph.output],
            "initializers": names, "nodes": nodes}
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "graph.json").write_text(json.dumps(spec))
    np.savez(out_dir / "weights.npz", **weights)
    return spec


class TorchGraph:
    """Executes graph.json with torch on one device (runs there, with torch)."""

    def __init__(self, folder: Path, device: str) -> None:
        import torch

        self.torch = torch
        self.spec = json.loads((Path(folder) / "graph.json").read_text())
        with np.load(Path(folder) / "weights.npz") as data:
            self.weights = {k: torch.from_numpy(data[k].copy()).to(device) for k in data.files}
        self.last_use = self._last_uses()

    def _last_uses(self) -> dict[str, int]:
        last = {}
        for i, node in enumerate(self.spec["nodes"]):
            for name in node["inputs"]:
                last[name] = i
        return last

    def __call__(self, feeds: dict) -> dict:
        env = {name: self.weights[key] for name, key in self.spec["initializers"].items()}
        env.update(feeds)
        keep = set(self.spec["outputs"]) | set(self.spec["initializers"])
        for i, node in enumerate(self.spec["nodes"]):
            args = [env[n] if n else None for n in node["inputs"]]
            results = self._op(node, args)
            for name, value in zip(node["outputs"], results):
                env[name] = value
            for name in set(node["inputs"]):  # free what no later node reads
                if name and self.last_use.get(name) == i and name not in keep:
                    env.pop(name, None)
        return {name: env[name] for name in self.spec["outputs"]}

    def _op(self, node: dict, args: list) -> list:
        F = self.torch.nn.functional
        op, a = node["op"], node["attrs"]
        x = args[0] if args else None
        if op == "Conv":
            pads = a.get("pads", [0, 0, 0, 0])
            if pads[:2] != pads[2:]:
                x = F.pad(x, (pads[1], pads[3], pads[0], pads[2]))
                pads = [0, 0, 0, 0]
            return [F.conv2d(x, args[1], args[2] if len(args) > 2 else None, a.get("strides", [1, 1]), pads[:2],
                             a.get("dilations", [1, 1]), a.get("group", 1))]
        if op in ("MaxPool", "AveragePool"):
            pads = a.get("pads", [0, 0, 0, 0])
            fn = F.max_pool2d if op == "MaxPool" else F.avg_pool2d
            extra = {} if op == "MaxPool" else {"count_include_pad": bool(a.get("count_include_pad", 0))}
            if pads[:2] != pads[2:]:
                x = F.pad(x, (pads[1], pads[3], pads[0], pads[2]), value=float("-inf") if op == "MaxPool" else 0.0)
                pads = [0, 0, 0, 0]
            return [fn(x, a["kernel_shape"], a.get("strides", a["kernel_shape"]), pads[:2],
                       ceil_mode=bool(a.get("ceil_mode", 0)), **extra)]
        return [self._simple(op, a, x, args, F)]

    def _simple(self, op: str, a: dict, x, args: list, F):
        torch = self.torch
        if op == "Relu":
            return F.relu(x)
        if op == "GlobalAveragePool":
            return x.mean(dim=(2, 3), keepdim=True)
        if op == "Concat":
            return torch.cat(args, dim=a["axis"])
        if op == "Flatten":
            axis = a.get("axis", 1)
            return x.reshape(int(np.prod(x.shape[:axis])), -1)
        if op == "Reshape":
            shape = [int(s) for s in args[1].tolist()]
            return x.reshape([x.shape[i] if s == 0 else s for i, s in enumerate(shape)])
        if op in ("Dropout", "Identity"):
            return x
        if op == "Softmax":
            return F.softmax(x, dim=a.get("axis", -1))
        if op == "Add":
            return args[0] + args[1]
        if op == "Mul":
            return args[0] * args[1]
        if op == "MatMul":
            return args[0] @ args[1]
        if op == "Gemm":
            A = args[0].T if a.get("transA", 0) else args[0]
            B = args[1].T if a.get("transB", 0) else args[1]
            y = a.get("alpha", 1.0) * (A @ B)
            return y + a.get("beta", 1.0) * args[2] if len(args) > 2 and args[2] is not None else y
        if op == "Constant":
            return self.weights[a["value"]["weight"]]
        raise ValueError(f"op {op} not implemented")
