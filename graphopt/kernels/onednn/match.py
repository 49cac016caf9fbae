"""Which legalized kernels oneDNN can compute: a convolution or matmul and its epilogue.

The portfolio decides per kernel, at the TIR level, because that is where a kernel has an
identity (graphopt.kernels.tuning.workload) and where compile applies the tuning database.
A fused kernel as legalize and FuseTIR leave it is a chain of blocks:

    [pad_temp] -> conv2d_nchw -> [T_add (bias [1,O,1,1] or a tensor of the output's shape)]*
               -> [relu]
    matmul -> [T_add (bias [N] or a tensor of the output's shape)]* -> [relu]

The chain is read back from the blocks themselves (strides and dilations from the index
expressions, padding from the pad block's load offset), then checked: every block must be
one of these shapes, each epilogue block must read the previous block's result at its own
indices, and the last must write the kernel's last parameter. Anything else (depthwise,
another epilogue, symbolic shapes, non-f32) is None: that kernel keeps its TVM schedule.
"""

from __future__ import annotations

from dataclasses import dataclass

import tvm
from tvm import s_tir, tirx

Load = tvm.ir.expr.TensorLoad  # a buffer read in TVM 0.27 (`.source` is the buffer's var)

BIAS, ADD, RELU = 1, 2, 3  # the shim's epilogue codes (shim.cc kBias, kAdd, kRelu)


@dataclass(frozen=True)
class Spec:
    """One oneDNN call: op ("conv2d" | "matmul"), its integer arguments, and the kernel's
    parameter positions for src, weights, dst and the epilogue operands (bias/add, in order)."""

    op: str
    shape: tuple[int, ...]  # conv: n c h w o kh kw oh ow sh sw pt pl pb pr dh dw groups; matmul: batch m k n b_batched
    src: int
    weights: int
    dst: int
    extras: tuple[int, ...]
    epilogue: tuple[int, ...]  # BIAS / ADD / RELU in order

    @property
    def post(self) -> int:
        """The epilogue as the shim's base-4 code."""
        return sum(step * 4**i for i, step in enumerate(self.epilogue))

    def values(self, mode: int = 0) -> list[int]:
        """The shim's integer arguments (describe() takes the same list)."""
        return list(self.shape) + [self.post] + ([mode] if self.op == "conv2d" else [])


def match(func: tirx.PrimFunc) -> Spec | None:
    """The oneDNN call that computes `func`, or None when it is not a supported kernel."""
    if not isinstance(func, tirx.PrimFunc) or not _static_f32(func):
        return None
    try:
        sch = s_tir.Schedule(func)
        blocks = [sch.get(b) for b in sch.get_child_blocks(sch.get_sblock("root"))]
    except Exception:  # noqa: BLE001  (no single root block: not a legalized kernel)
        return None
    params = _Params(func.params)
    pad = blocks.pop(0) if blocks and blocks[0].name_hint.startswith("pad") else None
    if not blocks:
        return None
    head, tail = blocks[0], blocks[1:]
    if head.name_hint in ("conv2d_nchw", "group_conv2d_nchw"):
        core = _conv(head, pad, params)
    elif head.name_hint == "matmul" and pad is None:
        core = _matmul(head, params)
    else:
        return None
    if core is None:
        return None
    return _with_epilogue(core, head, tail, params, len(func.params))


class _Params:
    """The kernel's buffer parameters by identity: `var in params`, `params[var]` -> position."""

    def __init__(self, params) -> None:
        self.params = list(params)

    def __contains__(self, var) -> bool:
        return any(p.same_as(var) for p in self.params)

    def __getitem__(self, var) -> int:
        return next(i for i, p in enumerate(self.params) if p.same_as(var))


def _static_f32(func: tirx.PrimFunc) -> bool:
    for param in func.params:
        shape = getattr(param, "shape", None)
        if shape is None or str(param.dtype) != "float32":
            return False
        if not all(isinstance(d, tirx.IntImm) for d in shape):
            return False
    return True


def _shape(buffer) -> list[int]:
    return [int(d) for d in buffer.shape]


def _at(expr, point: dict) -> int:
    """The integer value of an index expression with the block's iterators at `point`."""
    analyzer = tvm.sym.Analyzer()
    for var, value in point.items():
        analyzer.bind(var, tirx.const(value, str(var.ty.dtype)))
    value = analyzer.simplify(expr)
    if isinstance(value, tirx.IntImm):
        return int(value)
    raise ValueError(f"index {expr} does not reduce to a number at {point}")


def _loads(expr) -> list:
    """BufferLoads of a product `a * b`, or [] when `expr` is not one."""
    if isinstance(expr, tirx.Mul) and isinstance(expr.a, Load) and isinstance(expr.b, Load):
        return [expr.a, expr.b]
    return []


def _reduction_update(block):
    """The two loads of `out[...] = out[...] + a * b`, else None."""
    store = block.body
    if not isinstance(store, tirx.BufferStore) or not isinstance(store.value, tirx.Add) or block.init is None:
        return None
    value = store.value
    if not (isinstance(value.a, Load) and value.a.source.same_as(store.buffer)):
        return None
    loads = _loads(value.b)
    return loads or None


@dataclass(frozen=True)
class _Core:
    op: str
    shape: tuple[int, ...]
    src: int
    weights: int
    out_shape: tuple[int, ...]


def _conv(block, pad, params: _Params) -> _Core | None:
    """conv2d_nchw[n, f, y, x] += data[n, c, y*sh + ry*dh, x*sw + rx*dw] * w[f, c, ry, rx]."""
    loads = _reduction_update(block)
    if loads is None or len(block.iter_vars) != 7:
        return None
    data, weight = loads
    if weight.source not in params:
        return None
    v = [iv.var for iv in block.iter_vars]
    zero = dict.fromkeys(v, 0)
    try:
        sh = _at(data.indices[2], {**zero, v[2]: 1}) - _at(data.indices[2], zero)
        sw = _at(data.indices[3], {**zero, v[3]: 1}) - _at(data.indices[3], zero)
        dh = _at(data.indices[2], {**zero, v[5]: 1}) - _at(data.indices[2], zero)
        dw = _at(data.indices[3], {**zero, v[6]: 1}) - _at(data.indices[3], zero)
        source, (pt, pl) = _unpadded(data.source, pad)
    except ValueError:
        return None
    if source is None or source not in params:
        return None
    n, c, h, w = _shape(source)
    o, cg, kh, kw = _shape(weight.source)
    _, _, oh, ow = _shape(block.writes[0].source)
    if data.source is source and (pt, pl) != (0, 0) or cg == 0 or c % cg or o % (c // cg):
        return None
    if min(sh, sw, dh, dw) < 1 or min(pt, pl) < 0:
        return None
    # the least bottom/right padding that gives the output size (a stride that skips the last rows: 0)
    pb = max(0, (oh - 1) * sh + (kh - 1) * dh + 1 - h - pt)
    pr = max(0, (ow - 1) * sw + (kw - 1) * dw + 1 - w - pl)
    if (h + pt + pb - (kh - 1) * dh - 1) // sh + 1 != oh or (w + pl + pr - (kw - 1) * dw - 1) // sw + 1 != ow:
        return None
    shape = (n, c, h, w, o, kh, kw, oh, ow, sh, sw, pt, pl, pb, pr, dh, dw, c // cg)
    return _Core("conv2d", shape, params[source], params[weight.source], (n, o, oh, ow))


def _unpadded(buffer, pad) -> tuple:
    """(the tensor the convolution really reads, (pad top, pad left)): through the pad block if any."""
    if pad is None or not pad.writes or not pad.writes[0].source.same_as(buffer):
        return buffer, (0, 0)
    loads: list = []
    if isinstance(pad.body, tirx.BufferStore):
        _collect_loads(pad.body.value, loads)
    if len(loads) != 1 or len(loads[0].indices) != 4:
        return None, (0, 0)
    zero = {iv.var: 0 for iv in pad.iter_vars}
    offsets = [_at(i, zero) for i in loads[0].indices]
    if offsets[:2] != [0, 0]:
        return None, (0, 0)
    return loads[0].source, (-offsets[2], -offsets[3])


def _collect_loads(expr, out: list) -> None:
    """Every BufferLoad under `expr` (the pad block's if_then_else), depth first."""
    if isinstance(expr, Load):
        out.append(expr)
        return
    if isinstance(expr, tvm.ir.Call):
        for arg in expr.args:
            _collect_loads(arg, out)
    for name in ("a", "b", "condition", "true_value", "false_value", "value"):
        child = getattr(expr, name, None)
        if isinstance(child, tvm.ir.Expr):
            _collect_loads(child, out)


def _matmul(block, params: _Params) -> _Core | None:
    """matmul[b.., i, j] += A[b.., i, k] * B[(b..,) k, j], row-major, B 2-D or with A's batch dims."""
    loads = _reduction_update(block)
    if loads is None:
        return None
    a, b = loads
    if a.source not in params or b.source not in params:
        return None
    v = [iv.var for iv in block.iter_vars]
    out = _shape(block.writes[0].source)
    ashape, bshape = _shape(a.source), _shape(b.source)
    rank = len(out)
    if len(v) != rank + 1 or len(ashape) != rank or len(bshape) not in (2, rank) or rank < 2:
        return None
    reduce_var = v[-1]
    want_a = list(v[:rank - 1]) + [reduce_var]
    want_b = ([] if len(bshape) == 2 else list(v[:rank - 2])) + [reduce_var, v[rank - 1]]
    if not _same_vars(a.indices, want_a) or not _same_vars(b.indices, want_b):
        return None
    m, k, n = ashape[-2], ashape[-1], bshape[-1]
    batch = 1
    for d in out[:-2]:
        batch *= d
    if len(bshape) == 2:  # A's batch rows are contiguous: one [batch*m, k] x [k, n] product
        m, batch = m * batch, 1
    elif bshape[:-2] != out[:-2]:
        return None
    shape = (batch, m, k, n, 0 if len(bshape) == 2 else 1)
    return _Core("matmul", shape, params[a.source], params[b.source], tuple(out))


def _same_vars(indices, want: list) -> bool:
    return len(indices) == len(want) and all(isinstance(i, tirx.Var) and i.same_as(w) for i, w in zip(indices, want))


def _with_epilogue(core: _Core, head, tail: list, params: _Params, nparams: int) -> Spec | None:
    """The Spec when every block after the core is a bias/add/relu step on the previous result
    and the last one writes the kernel's last parameter (Relax passes outputs last)."""
    previous, extras, steps = head.writes[0].source, [], []
    for block in tail:
        step = _epilogue_step(block, previous, core, params, first=not steps)
        if step is None or len(steps) == 3:
            return None
        code, operand = step
        steps.append(code)
        if operand is not None:
            extras.append(operand)
        previous = block.writes[0].source
    if previous not in params or params[previous] != nparams - 1:
        return None
    return Spec(core.op, core.shape, core.src, core.weights, nparams - 1, tuple(extras), tuple(steps))


def _epilogue_step(block, previous, core: _Core, params: _Params, first: bool) -> tuple[int, int | None] | None:
    """(code, parameter position of its operand or None) of one elementwise block, else None."""
    store = block.body
    if not isinstance(store, tirx.BufferStore) or _shape(store.buffer) != list(core.out_shape):
        return None
    v = [iv.var for iv in block.iter_vars]
    if len(v) != len(core.out_shape) or not _same_vars(store.indices, v):
        return None
    value = store.value
    if _is_relu(value, previous, v):
        return RELU, None
    if not isinstance(value, tirx.Add):
        return None
    for mine, other in ((value.a, value.b), (value.b, value.a)):
        if _reads(mine, previous, v) and isinstance(other, Load) and other.source in params:
            code = _operand_kind(other, v, core, first)
            if code is not None:
                return code, params[other.source]
    return None


def _reads(expr, buffer, v: list) -> bool:
    return isinstance(expr, Load) and expr.source.same_as(buffer) and _same_vars(expr.indices, v)


def _is_relu(value, previous, v: list) -> bool:
    """Select(x < 0, 0, x) or max(x, 0) of the previous result."""
    if isinstance(value, tirx.Max):
        return _reads(value.a, previous, v) and _is_zero(value.b)
    if isinstance(value, tirx.Select) and isinstance(value.condition, tirx.LT):
        cond = value.condition
        return (_reads(cond.a, previous, v) and _is_zero(cond.b) and _is_zero(value.true_value)
                and _reads(value.false_value, previous, v))
    return False


def _is_zero(expr) -> bool:
    return isinstance(expr, tirx.FloatImm) and float(expr.value) == 0.0


def _operand_kind(load, v: list, core: _Core, first: bool) -> int | None:
    """ADD for a tensor of the output's shape read at the output's indices; BIAS for a per-channel
    (conv: [1, O, 1, 1]) or per-column (matmul: [N] or [1.., N]) vector, first step only."""
    shape = _shape(load.source)
    if shape == list(core.out_shape) and _same_vars(load.indices, v):
        return ADD
    if not first:
        return None
    channel = 1 if core.op == "conv2d" else len(core.out_shape) - 1
    size = core.out_shape[channel]
    if shape[-1:] == [size] and core.op == "matmul" and all(d == 1 for d in shape[:-1]):
        ok = isinstance(load.indices[-1], tirx.Var) and load.indices[-1].same_as(v[channel])
        return BIAS if ok else None
    if core.op == "conv2d" and shape == [1, size, 1, 1]:  # the dims of 1 can only be read at 0
        return BIAS if isinstance(load.indices[1], tirx.Var) and load.indices[1].same_as(v[1]) else None
    return None
