"""NaN and Inf semantics of the generated kernels, made to follow ONNX Runtime's.

Why: TVM lowers a float max/min to `select(a > b, a, b)`, which returns `b` when
either side is NaN, and starts max/min reductions (and max pooling's padding) at
-FLT_MAX instead of -inf. So Relu (`max(x, 0)`) turns NaN into 0, ArgMax of a row of
-inf answers -1, and a NaN anywhere gives believable finite outputs: the worst
answer a compiled model can give. ONNX Runtime keeps NaN, and keeps -inf as -inf.

What: TVM's legalization of the float ops below is replaced (LegalizeOps'
`customize_legalize_map`), so every kernel, and every epilogue graphopt's
schedules fuse into a conv or matmul, computes:

1. relu, clip (HardSigmoid, Clip, ReLU6), maximum, minimum (Max, Min, Softplus):
   NaN in, NaN out; -inf and +inf kept. Relu is `select(x < 0, 0, x)`: in a fused
   conv + relu the same instructions as TVM's (a compare and a mask per vector),
   only the compare's predicate differs (checked with objdump, AVX2).
2. sign: NaN in, NaN out (TVM answered 0).
3. max/min reductions (ReduceMax/Min, GlobalMaxPool, the one-input Max) and max
   pooling: start at -inf/+inf, out-of-bounds taps are -inf, and any NaN in a
   window or row makes the result NaN.
4. argmax/argmin: a row of -inf/+inf answers its first index (TVM answered -1, out
   of range); a NaN counts as the largest (for argmin the smallest) value, so the
   first NaN's index is the answer.

Where ONNX Runtime itself differs: its max reductions, max pooling and ArgMax
handle NaN by position and by code path (a NaN first in a row wins, elsewhere it is
mostly dropped; MLAS' pooling depends on the SIMD lane a NaN falls in; ArgMax of a
1-D tensor returns the first NaN, of a 2-D row ignores it), so no kernel can equal
it there. graphopt propagates NaN in those cases: where ONNX Runtime answers NaN,
graphopt does too; where ONNX Runtime drops a NaN, graphopt answers NaN rather than
a believable number (numpy's and the ONNX reference's answer).

Also here (step 0, before legalization): TVM's importer builds Clip's bounds as
ready-made `topi.maximum`/`topi.minimum` kernels, out of reach of the legalization
map; `imported_ops_for_nan_semantics` turns such a kernel back into
relax.maximum/minimum, and makes the importer's ReduceLogSumExp
(`log(sum(exp(x - max))) + max`) shift by 0 where the max is infinite, so a row
holding +inf (or only -inf) answers +inf (-inf) as ONNX Runtime does, not NaN.
Integer ops keep TVM's own legalization (no NaN, no Inf). On cuda, steps 0-2 apply
and steps 3-4 do not (see legalize_map).
"""

from __future__ import annotations

import math

import tvm
from tvm import relax, te, tirx

CHANNEL_FIRST = ("NCW", "NCHW", "NCDHW")


# ---------------------------------------------------------------------------------------------
# scalar rules, shared by the elementwise ops, the reductions and the pools


def nan_max(a, b):
    """max(a, b) with NaN winning from either side (a when a is NaN, else b when b is)."""
    return tirx.Select(tirx.Or(a > b, tirx.isnan(a)), a, b)


def nan_min(a, b):
    return tirx.Select(tirx.Or(a < b, tirx.isnan(a)), a, b)


def _clamp(x, lo: float | None, hi: float | None, dtype: str):
    """Clip with constant bounds; NaN fails both tests and passes through unchanged."""
    if lo is not None:
        x = tirx.Select(x < lo, tirx.const(lo, dtype), x)
    if hi is not None:
        x = tirx.Select(x > hi, tirx.const(hi, dtype), x)
    return x


def _is_float(expr: relax.Expr) -> bool:
    return "float" in str(expr.ty.dtype)


def _default(op_name: str):
    """TVM's own legalization of `op_name` (used for integer dtypes only)."""
    return tvm.ir.Op.get(op_name).get_attr("FLegalize")


def _float_only(op_name: str, legalize):
    """`legalize` for float inputs, TVM's own legalization for the rest."""

    def apply(bb: relax.BlockBuilder, call: relax.Call) -> relax.Expr:
        if all(_is_float(a) for a in call.args if isinstance(a.ty, relax.TensorType)):
            return legalize(bb, call)
        return _default(op_name)(bb, call)

    return apply


def _shape(expr: relax.Expr) -> list:
    """The static or symbolic shape of a tensor expression, as TE takes it."""
    return list(expr.ty.shape)


def _is_one(dim) -> bool:
    return isinstance(dim, tirx.IntImm) and int(dim.value) == 1


# ---------------------------------------------------------------------------------------------
# 1-2. elementwise


def _relu(bb: relax.BlockBuilder, call: relax.Call) -> relax.Expr:
    def relu(x: te.Tensor) -> te.Tensor:
        zero = tirx.const(0, x.dtype)
        return te.compute(x.shape, lambda *i: tirx.Select(x(*i) < zero, zero, x(*i)), name="relu")

    return bb.call_te(relu, call.args[0], primfunc_name_hint="relu")


def _sign(bb: relax.BlockBuilder, call: relax.Call) -> relax.Expr:
    def sign(x: te.Tensor) -> te.Tensor:
        one = tirx.const(1, x.dtype)
        return te.compute(x.shape, lambda *i: tirx.Select(x(*i) > 0, one, tirx.Select(x(*i) < 0, -one, x(*i))),
                          name="sign")

    return bb.call_te(sign, call.args[0], primfunc_name_hint="sign")


def _bound(value: relax.Expr) -> float | None:
    """A clip bound as a Python float; None for an infinite (absent) one."""
    raw = value.value  # a PrimValue: a Python number or a tirx immediate
    v = float(getattr(raw, "value", raw))
    return None if math.isinf(v) else v


def _clip(bb: relax.BlockBuilder, call: relax.Call) -> relax.Expr:
    lo, hi = _bound(call.args[1]), _bound(call.args[2])

    def clip(x: te.Tensor) -> te.Tensor:
        return te.compute(x.shape, lambda *i: _clamp(x(*i), lo, hi, x.dtype), name="clip")

    return bb.call_te(clip, call.args[0], primfunc_name_hint="clip")


def _broadcast_index(tensor: te.Tensor, out_index) -> list:
    """numpy broadcasting: `tensor`'s element that output element `out_index` reads."""
    offset = len(out_index) - len(tensor.shape)
    return [0 if _is_one(d) else out_index[offset + k] for k, d in enumerate(tensor.shape)]


def _binary(rule, name: str):
    def legalize(bb: relax.BlockBuilder, call: relax.Call) -> relax.Expr:
        shape = _shape(call)

        def compute(a: te.Tensor, b: te.Tensor) -> te.Tensor:
            return te.compute(shape, lambda *i: rule(a(*_broadcast_index(a, i)), b(*_broadcast_index(b, i))),
                              name=name)

        return bb.call_te(compute, call.args[0], call.args[1], primfunc_name_hint=name)

    return legalize


# ---------------------------------------------------------------------------------------------
# 3. max/min reductions and max pooling


def _input_index(out: tuple, red: dict, keep: bool, rank: int) -> list:
    """The input element a reduction's output element `out` reads at reduce axes `red`
    (axis -> reduce var); with `keep`, the output keeps the reduced axes as size 1."""
    kept = iter(out)
    return [red[a] if a in red else out[a] if keep else next(kept) for a in range(rank)]


def _reducer(rule, identity: float):
    return te.comm_reducer(rule, lambda dtype: tirx.const(identity, dtype), name="nan_reduce")


def _reduction(rule, identity: float, name: str):
    def legalize(bb: relax.BlockBuilder, call: relax.Call) -> relax.Expr:
        x = call.args[0]
        rank = len(x.ty.shape)
        axes = range(rank) if call.attrs.axis is None else [int(a) % rank for a in call.attrs.axis]
        keep = bool(call.attrs.keepdims)

        def compute(data: te.Tensor) -> te.Tensor:
            red = {a: te.reduce_axis((0, data.shape[a]), name=f"k{a}") for a in axes}
            reduce = _reducer(rule, identity)

            def body(*out):
                return reduce(data(*_input_index(out, red, keep, rank)), axis=list(red.values()))

            return te.compute(_shape(call), body, name=name)

        return bb.call_te(compute, x, primfunc_name_hint=name)

    return legalize


def _max_pool(bb: relax.BlockBuilder, call: relax.Call) -> relax.Expr:
    """Max pooling as a window reduction over a copy of the data padded with -inf.

    Why a padded copy (a stage of its own, not a bounds check per tap): every tap then
    reads without a condition, so the pooling rule builds the padded channel in L1 and
    vectorizes the window's rows; a check per tap kept LLVM scalar (inception's 3x3
    stride-1 pools at 4 GB/s). Without padding the window reads the data directly."""
    attrs = call.attrs
    if attrs.layout not in CHANNEL_FIRST or attrs.out_layout != attrs.layout:
        raise NotImplementedError(f"max pooling with layout {attrs.layout}->{attrs.out_layout}: graphopt's "
                                  "NaN-preserving pooling handles channel-first layouts only")
    dims = len(attrs.pool_size)
    kernel, stride = [int(k) for k in attrs.pool_size], [int(s) for s in attrs.strides]
    dilation, pad = [int(d) for d in attrs.dilation], [int(p) for p in attrs.padding[:dims]]
    out_shape = _shape(call)

    def compute(data: te.Tensor) -> te.Tensor:
        source = _padded(data, out_shape, kernel, stride, dilation, pad)
        taps = [te.reduce_axis((0, k), name=f"r{d}") for d, k in enumerate(kernel)]
        reduce = _reducer(nan_max, -math.inf)

        def body(n, c, *out):
            at = [out[d] * stride[d] + taps[d] * dilation[d] for d in range(dims)]
            return reduce(source(n, c, *at), axis=taps)

        return te.compute(out_shape, body, name="max_pool")

    return bb.call_te(compute, call.args[0], primfunc_name_hint="max_pool")


def _padded(data: te.Tensor, out_shape: list, kernel: list, stride: list, dilation: list, pad: list) -> te.Tensor:
    """`data` with -inf around it, as far as the windows reach (ceil mode may reach past the
    stated end padding); `data` itself when no window leaves it."""
    dims = len(kernel)
    outs = [_static(out_shape[2 + d]) for d in range(dims)]
    reach = [(outs[d] - 1) * stride[d] + (kernel[d] - 1) * dilation[d] + 1 for d in range(dims)]
    sizes = [data.shape[2 + d] for d in range(dims)]
    if not any(pad) and all(_fits(r, s) for r, s in zip(reach, sizes)):
        return data

    def value(n, c, *at):
        index = [at[d] - pad[d] for d in range(dims)]
        inside = tirx.all(*[tirx.And(i >= 0, i < sizes[d]) for d, i in enumerate(index)])
        return tirx.if_then_else(inside, data(n, c, *index), tirx.const(-math.inf, data.dtype))

    return te.compute([*data.shape[:2], *reach], value, name="pad_temp")


def _static(dim):
    """A shape's dim as an int when it is a constant, else as it is (a range compile's symbol)."""
    return int(dim.value) if isinstance(dim, tirx.IntImm) else dim


def _fits(reach, size) -> bool:
    """Whether `reach` elements stay within `size` (a symbolic pair is not assumed to)."""
    return isinstance(reach, int) and isinstance(size, tirx.IntImm) and reach <= int(size.value)


# ---------------------------------------------------------------------------------------------
# 4. argmax / argmin


def _arg_reducer(better, identity: float):
    """(index, value) pairs; NaN outranks every number, ties and NaN pairs go to the
    lower index. The identity's index (the largest) loses every tie, so a row of -inf
    (argmax) or +inf (argmin) answers its first index."""

    def combine(lhs, rhs):
        (i, a), (j, b) = lhs, rhs
        lower = i < j
        left = tirx.Select(tirx.isnan(a), tirx.Or(tirx.Not(tirx.isnan(b)), lower),
                           tirx.And(tirx.Not(tirx.isnan(b)), tirx.Or(better(a, b), tirx.And(a == b, lower))))
        return tirx.Select(left, i, j), tirx.Select(left, a, b)

    def ident(index_dtype, value_dtype):
        return tirx.max_value(index_dtype), tirx.const(identity, value_dtype)

    return te.comm_reducer(combine, ident, name="nan_arg_reduce")


def _arg_reduction(better, identity: float, name: str):
    def legalize(bb: relax.BlockBuilder, call: relax.Call) -> relax.Expr:
        x = call.args[0]
        rank = len(x.ty.shape)
        axes = range(rank) if call.attrs.axis is None else [int(call.attrs.axis) % rank]
        keep, index_dtype = bool(call.attrs.keepdims), str(call.ty.dtype)

        def compute(data: te.Tensor) -> te.Tensor:
            red = {a: te.reduce_axis((0, data.shape[a]), name=f"k{a}") for a in axes}
            reduce = _arg_reducer(better, identity)
            flat = _flat_index(data, red)

            def pair(*out):
                index = _input_index(out, red, keep, rank)
                return reduce((flat.astype(index_dtype), data(*index)), axis=list(red.values()))

            idx, _ = te.compute(_shape(call), pair, name=f"{name}_pair")
            return te.compute(_shape(call), lambda *i: idx(*i), name=name)

        return bb.call_te(compute, x, primfunc_name_hint=name)

    return legalize


def _flat_index(data: te.Tensor, red: dict):
    """The row-major position of a tap among the reduced axes (ONNX reduces one axis;
    TVM's argmax without an axis reduces them all, numbering elements in order)."""
    flat = tirx.const(0, "int64")
    for axis, var in red.items():
        flat = flat * data.shape[axis] + var.var
    return flat


# ---------------------------------------------------------------------------------------------
# 0. the importer's ready-made Clip kernels, lifted back to relax ops


def _single_store(func: tirx.PrimFunc):
    """The one BufferStore of a one-block elementwise kernel, else None."""
    stmt = func.body
    while True:
        if isinstance(stmt, tvm.s_tir.stmt.SBlockRealize):
            stmt = stmt.block.body
        elif isinstance(stmt, tirx.For):
            stmt = stmt.body
        else:
            break
    return stmt if isinstance(stmt, tirx.BufferStore) else None


def _broadcast_load(load, store) -> bool:
    """Whether `load` reads its tensor as numpy broadcasting would for `store`'s element:
    its indices are the store's trailing ones, or 0 on a broadcast axis."""
    if not isinstance(load, tvm.ir.TensorLoad) or len(load.indices) > len(store.indices):
        return False
    tail = list(store.indices)[len(store.indices) - len(load.indices):]
    return all(i.same_as(o) or (isinstance(i, tirx.IntImm) and int(i.value) == 0) for i, o in zip(load.indices, tail))


def _lifted(call: relax.Call, func: tirx.PrimFunc) -> relax.Expr | None:
    """relax.maximum/minimum for a call_tir of topi.maximum/minimum on floats, else None."""
    store = _single_store(func)
    if store is None or not isinstance(store.value, (tirx.Max, tirx.Min)) or "float" not in str(store.value.ty):
        return None
    args = list(call.args[1].fields)
    operands = [store.value.a, store.value.b]
    if not all(isinstance(o, tirx.FloatImm) or _broadcast_load(o, store) for o in operands):
        return None
    buffers = list(func.params)
    values = []
    for o in operands:
        if isinstance(o, tirx.FloatImm):
            values.append(relax.const(o.value, str(o.ty)))
            continue
        found = [a for a, buf in zip(args, buffers) if buf.same_as(o.source)]
        if len(found) != 1:
            return None
        values.append(found[0])
    op = relax.op.maximum if isinstance(store.value, tirx.Max) else relax.op.minimum
    return op(*values)


@relax.expr_functor.mutator
class _LiftMinMax(relax.PyExprMutator):
    def visit_call_(self, call: relax.Call) -> relax.Expr:
        call = super().visit_call_(call)
        if call.op != tvm.ir.Op.get("relax.call_tir") or len(call.args) != 2:
            return call
        func = self.builder_.get()[call.args[0]]
        lifted = _lifted(call, func) if isinstance(func, tirx.PrimFunc) else None
        return call if lifted is None else lifted


def _logsumexp_pattern():
    """The importer's ReduceLogSumExp: log(sum(exp(x - max(x)))) + max(x)."""
    from tvm.relax.dpl import is_op, wildcard

    x = wildcard()
    peak = is_op("relax.max")(x)
    total = is_op("relax.sum")(is_op("relax.exp")(is_op("relax.subtract")(x, peak)))
    return x, peak, total, is_op("relax.add")(is_op("relax.log")(total), peak)


def _finite_shift(func: relax.Function) -> relax.Function:
    """Step 0b: ReduceLogSumExp's shift by the row's max, replaced by 0 where that max
    is infinite: inf - inf would make NaN of a row ONNX Runtime answers +-inf for."""
    x, peak, total, pattern = _logsumexp_pattern()

    def rewrite(_orig: relax.Expr, matched: dict) -> relax.Expr:
        m, s = matched[peak], matched[total]
        shift = relax.op.where(relax.op.isinf(m), relax.const(0, str(m.ty.dtype)), m)
        summed = relax.op.sum(relax.op.exp(relax.op.subtract(matched[x], shift)), s.attrs.axis, s.attrs.keepdims)
        return relax.op.add(relax.op.log(summed), shift)

    return relax.dpl.rewrite_call(pattern, rewrite, func)


@tvm.transform.module_pass(opt_level=0, name="ImportedOpsForNaNSemantics")
def imported_ops_for_nan_semantics(mod: tvm.IRModule, _ctx) -> tvm.IRModule:
    """Step 0: the importer's float `topi.maximum`/`topi.minimum` kernels become
    relax.maximum/minimum again (so the legalization below gives them NaN semantics),
    and ReduceLogSumExp keeps infinite rows infinite."""
    mutator = _LiftMinMax(mod)
    for gvar, func in mod.functions_items():
        if isinstance(func, relax.Function):
            mutator.builder_.update_func(gvar, _finite_shift(mutator.visit_expr(func)))
    return relax.transform.DeadCodeElimination()(mutator.builder_.get())


# ---------------------------------------------------------------------------------------------
# the hook


def legalize_map(target_kind: str = "llvm") -> dict:
    """Op name -> graphopt's legalization (floats; integers keep TVM's).

    Steps 3-4 (reductions, pooling, argmax/argmin) on llvm only: on cuda, dlight turns
    them into cross-thread reductions, which TVM lowers only for its own reducers (a
    custom combiner fails the build), so there they keep TVM's legalization."""
    table = {
        "relax.nn.relu": _relu,
        "relax.sign": _sign,
        "relax.clip": _clip,
        "relax.maximum": _binary(nan_max, "maximum"),
        "relax.minimum": _binary(nan_min, "minimum"),
    }
    if target_kind == "llvm":
        table.update({
            "relax.max": _reduction(nan_max, -math.inf, "max"),
            "relax.min": _reduction(nan_min, math.inf, "min"),
            "relax.argmax": _arg_reduction(lambda a, b: a > b, -math.inf, "argmax"),
            "relax.argmin": _arg_reduction(lambda a, b: a < b, math.inf, "argmin"),
            **{f"relax.nn.max_pool{d}d": _max_pool for d in (1, 2, 3)},
        })
    return {name: _float_only(name, rule) for name, rule in table.items()}


def with_nan_semantics(passes: list, target: tvm.target.Target) -> list:
    """`passes` (a backend's legalize passes) with its LegalizeOps replaced by one that
    uses legalize_map(), preceded by imported_ops_for_nan_semantics. Raises when there
    is no LegalizeOps to replace: the NaN rules are never dropped silently."""
    names = [p.info.name for p in passes]
    if "LegalizeOps" not in names:
        raise RuntimeError(f"no LegalizeOps among the legalize passes {names}: cannot apply NaN semantics")
    at = names.index("LegalizeOps")
    rules = legalize_map(target.kind.name)
    ours = [imported_ops_for_nan_semantics, relax.transform.LegalizeOps(customize_legalize_map=rules)]
    return passes[:at] + ours + passes[at + 1:]
