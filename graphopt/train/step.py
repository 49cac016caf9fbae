"""One Relax function for one training step: forward, loss, backward, update.

Design: TVM's `relax.training` gives the pieces (AppendLoss, Gradient, an
Optimizer that emits an update function), and SetupTrainer would leave them as
four functions. graphopt needs ONE function so that extraction sees every
tensor of the step (activations, gradients, update temporaries) in one
execution order and the arena plan covers all of them. So:

    backbone   = the imported forward `main`, its weights as parameters
    adjoint    = Gradient(AppendLoss(backbone, loss))      (loss, grads)
    update     = optimizer.get_function()                  (params', states')
    main(inputs..., target, params..., states...) -> (loss, params'..., states'...)
                 calls adjoint then update; InlinePrivateFunctions flattens it.

Parameters and optimizer states are flat arguments and flat outputs, so the
runtime feeds a step's outputs to the next step positionally.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import tvm
from tvm import relax
from tvm.relax.training.loss import CrossEntropyLoss, MSELoss
from tvm.relax.training.optimizer import SGD, Adam
from tvm.relax.training.utils import AppendLoss
from tvm.relax.transform import DecomposeOpsForTraining, Gradient

from graphopt.errors import InputError

LOSSES = ("cross_entropy", "mse")
TARGET_NAME = "target"


class _Adam(Adam):
    """TVM 0.27's Adam.init fails building its state with `np.ones((), T.float32)`;
    graphopt keeps the initial states itself (`initial_states`), so init only types."""

    def init(self, params):
        self._set_params_and_dtype(params if isinstance(params, list) else [params])
        self.state = ()
        return self


@dataclass(frozen=True)
class OptimizerSpec:
    """`sgd:lr=0.1` or `adam:lr=1e-3,beta1=0.9,beta2=0.999,eps=1e-8`."""

    name: str
    lr: float
    extra: tuple[tuple[str, float], ...] = ()

    @staticmethod
    def parse(text: str) -> OptimizerSpec:
        name, _, rest = text.partition(":")
        values = {}
        for item in filter(None, rest.split(",")):
            key, sep, val = item.partition("=")
            try:
                values[key.strip()] = float(val)
            except ValueError:
                raise InputError(f"optimizer {text!r}: {item!r} is not KEY=NUMBER") from None
            if not sep:
                raise InputError(f"optimizer {text!r}: {item!r} is not KEY=NUMBER")
        name = name.strip().lower()
        allowed = {"sgd": {"lr", "weight_decay"}, "adam": {"lr", "beta1", "beta2", "eps", "weight_decay"}}
        if name not in allowed:
            raise InputError(f"unknown optimizer {name!r}; choose sgd or adam")
        if set(values) - allowed[name]:
            raise InputError(f"optimizer {name}: unknown option(s) {sorted(set(values) - allowed[name])}")
        lr = values.pop("lr", 0.01 if name == "sgd" else 1e-3)
        return OptimizerSpec(name, lr, tuple(sorted(values.items())))

    def __str__(self) -> str:
        return ",".join([f"{self.name}:lr={self.lr:g}"] + [f"{k}={v:g}" for k, v in self.extra])

    def make(self):
        extra = dict(self.extra)
        if self.name == "sgd":
            return SGD(self.lr, weight_decay=extra.get("weight_decay", 0.0))
        return _Adam(self.lr, betas=(extra.get("beta1", 0.9), extra.get("beta2", 0.999)),
                     eps=extra.get("eps", 1e-8), weight_decay=extra.get("weight_decay", 0.0))

    def initial_states(self, params: list[np.ndarray]) -> list[np.ndarray]:
        """The optimizer's state at step 0, in the order its update function takes them."""
        if self.name == "sgd":
            return [np.zeros((), np.int64)]  # TVM's SGD state: the step counter
        dtype = params[0].dtype
        zeros = [np.zeros_like(p) for p in params]
        return [np.zeros((), np.int64), np.ones((), dtype), np.ones((), dtype), *zeros,
                *[z.copy() for z in zeros]]


@dataclass(frozen=True)
class TrainStep:
    """The step module and what the artifact must record about its signature."""

    mod: tvm.IRModule
    target_shape: tuple[int, ...]
    target_dtype: str
    state_shapes: list[tuple[tuple[int, ...], str]]


def _target_type(loss: str, logits: relax.TensorType) -> relax.TensorType:
    shape = [int(d) for d in logits.shape.values]
    if loss == "cross_entropy":
        if len(shape) != 2:
            raise InputError(f"cross_entropy needs logits [batch, classes]; the model outputs {shape}")
        return relax.TensorType((shape[0],), "int64")
    return relax.TensorType(shape, logits.dtype)


def build_train_step(forward: tvm.IRModule, num_inputs: int, loss: str, optimizer: OptimizerSpec) -> TrainStep:
    """Turns the imported forward module (inputs then weights) into one step function."""
    if loss not in LOSSES:
        raise InputError(f"unknown loss {loss!r}; choose one of {', '.join(LOSSES)}")
    func = forward["main"]
    logits = func.ret_ty
    if not isinstance(logits, relax.TensorType):
        raise InputError("training needs a model with exactly one output (the logits or prediction)")
    num_params = len(func.params) - num_inputs
    target = _target_type(loss, logits)
    backbone = tvm.IRModule({"backbone": func.with_attr("global_symbol", "backbone")})
    backbone = backbone.with_attrs({"param_num": num_params, "state_num": 0})
    loss_fn = (CrossEntropyLoss if loss == "cross_entropy" else MSELoss)(reduction="mean")
    mod = AppendLoss("backbone", loss_fn(logits, target), 1, "backbone_loss")(backbone)
    mod = DecomposeOpsForTraining("backbone_loss")(mod)
    weights = list(mod["backbone_loss"].params[num_inputs:num_inputs + num_params])
    mod = Gradient("backbone_loss", require_grads=weights, target_index=0)(mod)
    opt = optimizer.make().init(weights)
    step = _one_function(mod["backbone_loss_adjoint"], opt.get_function(), num_inputs, num_params)
    states = [(tuple(int(d) for d in t.shape.values), str(t.dtype)) for t in
              step["main"].params[num_inputs + 1 + num_params:] for t in [t.ty]]
    return TrainStep(step, tuple(int(d) for d in target.shape.values), str(target.dtype), states)


def _one_function(adjoint: relax.Function, update: relax.Function, num_inputs: int, num_params: int) -> tvm.IRModule:
    """main(inputs, target, params, states) calling adjoint then update, inlined."""
    bb = relax.BlockBuilder()
    g_adj = bb.add_func(adjoint.without_attr("global_symbol"), "adjoint")
    g_upd = bb.add_func(update.without_attr("global_symbol"), "update")
    fresh = [relax.Var(v.name, v.ty) for v in adjoint.params]
    inputs, weights, target = fresh[:num_inputs], fresh[num_inputs:num_inputs + num_params], fresh[-1]
    target = relax.Var(TARGET_NAME, target.ty)
    state_types = list(update.params[2].ty.fields)
    states = [relax.Var(f"optim_state{i}", t) for i, t in enumerate(state_types)]
    with bb.function("main", inputs + [target] + weights + states):
        with bb.dataflow():
            both = bb.emit(relax.Call(g_adj, inputs + weights + [target]))
            loss = relax.TupleGetItem(both, 0)
            if isinstance(adjoint.ret_ty.fields[0], relax.TupleType):
                loss = relax.TupleGetItem(loss, 0)
            loss = bb.emit(loss)
            new = bb.emit(relax.Call(g_upd, [relax.Tuple(weights), relax.TupleGetItem(both, 1), relax.Tuple(states)]))
            new_w = [bb.emit(relax.TupleGetItem(relax.TupleGetItem(new, 0), i)) for i in range(num_params)]
            new_s = [bb.emit(relax.TupleGetItem(relax.TupleGetItem(new, 1), i)) for i in range(len(states))]
            out = bb.emit_output(relax.Tuple([loss, *new_w, *new_s]))
        bb.emit_func_output(out)
    mod = relax.transform.InlinePrivateFunctions()(bb.get())
    mod = relax.transform.DeadCodeElimination(["main"])(mod)
    return mod
