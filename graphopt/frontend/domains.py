"""Domains, opsets and operators judged as ONNX Runtime judges them, before anything else runs.

Why: TVM's ONNX importer picks a converter by `op_type` alone. It ignores a node's domain, the
opset of every domain but the standard one, and the model's local functions, so
`com.example:Relu` compiled as the standard Relu and a model stamped with opset 99 imported with
the newest converters: an answer where ONNX Runtime (the reference graphopt is checked against)
refuses the model. A silent wrong answer is the worst outcome; this gate refuses in one line.

Each node is one of (`classify_nodes`):

    standard   '' / 'ai.onnx' op defined, not deprecated, at the model's opset (onnx.defs): TVM may import it
    ort_only   known to ONNX Runtime but not standard ONNX: 'ai.onnx.ml' ops (onnx.defs) and ops of
               ORT's own domains (com.microsoft contrib ops...: ORT's schema registry)
    invalid    anything else: unknown domain or op, op not yet defined or deprecated at the
               opset, a domain without opset_import, a call to a local function left un-inlined

A node with subgraphs (If, Loop, Scan) takes the worst verdict of the nodes inside them.

ONNX Runtime's rules mirrored (probed with onnxruntime 1.31; tests/frontend/test_domains.py probes
the installed one against ORT_MAX_OPSET):
 1. opset_import: a version above the last one ORT supports for a domain it knows is refused,
    even for a domain no node uses; a domain ORT does not know may have any version.
 2. a node's domain needs an opset_import. ORT quietly adds the domains it knows; onnx.checker
    (which graphopt's loader runs on every file) refuses, and so does this gate.
 3. '' and 'ai.onnx' are one domain: both imported at different versions is refused (ORT
    accepts it, and which one it reads is not documented; TVM reads whichever comes last).
 4. model-local functions: ORT inlines them, TVM ignores them (`inline_functions`).
"""

from __future__ import annotations

import enum
import functools
from collections.abc import Iterator
from dataclasses import dataclass

import onnx
import onnx.inliner

from graphopt.errors import ModelLoadError, UnsupportedOperatorError
from graphopt.frontend import opset_compat, opset_rewrites

# rule 1: the last opset ONNX Runtime accepts for each domain it knows (onnxruntime 1.31)
ORT_MAX_OPSET: dict[str, int] = {
    "": 26, "ai.onnx.ml": 5, "ai.onnx.training": 1, "ai.onnx.preview.training": 1, "ai.onnx.preview": 1,
    "com.microsoft": 1, "com.microsoft.nchwc": 1, "com.microsoft.experimental": 1,
    "com.ms.internal.nhwc": 26, "org.pytorch.aten": 1,
}
ML_DOMAIN = "ai.onnx.ml"


class Kind(enum.Enum):
    """What may run a node: TVM (standard), only ONNX Runtime (ort_only), nothing (invalid)."""

    STANDARD = "standard"
    ORT_ONLY = "ort_only"
    INVALID = "invalid"


_SEVERITY = {Kind.STANDARD: 0, Kind.ORT_ONLY: 1, Kind.INVALID: 2}


@dataclass(frozen=True)
class NodeClass:
    """The verdict on one node of the main graph; `reason` says why it is not standard."""

    index: int  # position in model.graph.node
    node: str  # its name, or its first output when unnamed
    domain: str  # as written in the node ('ai.onnx' is kept)
    op_type: str
    kind: Kind
    reason: str = ""


def check_domains(model: onnx.ModelProto, allow_ort_only: bool = False) -> onnx.ModelProto:
    """The gate `prepare_model` runs first: `model` with local functions inlined, every node standard
    (or, with `allow_ort_only`, known to ONNX Runtime: such nodes become fallback kernels that ORT
    runs, graphopt.frontend.fallback).

    ModelLoadError for an invalid node or opset (naming node, domain, op and why);
    UnsupportedOperatorError listing every op that only ONNX Runtime knows, unless allowed.
    """
    model = lower_unchanged_opset(canonical_domains(model))
    model_opsets(model)
    model = inline_functions(model)
    verdicts = classify_nodes(model)
    bad = next((v for v in verdicts if v.kind is Kind.INVALID), None)
    if bad is not None:
        raise ModelLoadError(f"invalid ONNX model: node {bad.node!r} ({qualified(bad.domain, bad.op_type)}): "
                             f"{bad.reason}")
    ort_only = sorted({qualified(v.domain, v.op_type) for v in verdicts if v.kind is Kind.ORT_ONLY})
    if ort_only and not allow_ort_only:
        raise UnsupportedOperatorError(f"{', '.join(ort_only)}: not standard ONNX (known to ONNX Runtime only); "
                                       "TVM's ONNX importer cannot convert them")
    return model


def classify_nodes(model: onnx.ModelProto) -> tuple[NodeClass, ...]:
    """One verdict per node of `model.graph`, in order (see the module docstring)."""
    opsets = model_opsets(model)
    local = {(normalize(f.domain), f.name) for f in model.functions}
    verdicts = []
    for index, node in enumerate(model.graph.node):
        kind, reason = _judge(node, opsets, local)
        verdicts.append(NodeClass(index, node.name or (node.output[0] if node.output else "?"),
                                  node.domain, node.op_type, kind, reason))
    return tuple(verdicts)


def _judge(node: onnx.NodeProto, opsets: dict[str, int], local: set) -> tuple[Kind, str]:
    """The verdict on one node and, where not standard, why: its own, or the worst inside its subgraphs."""
    kind, reason = _judge_op(normalize(node.domain), node.op_type, opsets, local)
    for sub in subgraphs(node):
        for inner in sub.node:
            inner_kind, inner_reason = _judge(inner, opsets, local)
            if _SEVERITY[inner_kind] > _SEVERITY[kind]:
                name = inner.name or (inner.output[0] if inner.output else "?")
                kind, reason = inner_kind, (f"its subgraph node {name!r} "
                                            f"({qualified(inner.domain, inner.op_type)}): {inner_reason}")
    return kind, reason


def _judge_op(domain: str, op: str, opsets: dict[str, int], local: set) -> tuple[Kind, str]:
    if (domain, op) in local:
        return Kind.INVALID, "calls a model-local function that was not inlined (inline_functions)"
    if domain not in opsets:
        return Kind.INVALID, f"the model has no opset_import for domain {domain_label(domain)}"
    version = opsets[domain]
    if version < 1:
        return Kind.INVALID, f"opset {version} of domain {domain_label(domain)} is not a version"
    onnx_defined = domain in ("", ML_DOMAIN)
    reason = missing(onnx_schemas() if onnx_defined else ort_schemas(), domain, op, version)
    if reason:
        return Kind.INVALID, reason
    return (Kind.STANDARD, "") if domain == "" else (Kind.ORT_ONLY, f"{domain_label(domain)} is not standard ONNX")


def missing(schemas: dict, domain: str, op: str, version: int) -> str:
    """Why `op` is not defined at opset `version` of `domain` in `schemas` (a sentence); '' when it is."""
    history = schemas.get((domain, op))
    where = "ONNX" if domain in ("", ML_DOMAIN) else "ONNX Runtime"
    if history is None:
        if not any(d == domain for d, _ in schemas):
            return f"{where} has no operator in domain {domain_label(domain)}"
        return f"{where} has no operator {op} in domain {domain_label(domain)}"
    defined = [(since, deprecated) for since, deprecated in history if since <= version]
    if not defined:
        return f"defined from opset {history[0][0]} of domain {domain_label(domain)}; the model imports {version}"
    since, deprecated = defined[-1]
    if deprecated:
        return f"deprecated since opset {since} of domain {domain_label(domain)}; the model imports {version}"
    return ""


@functools.lru_cache(maxsize=1)
def onnx_schemas() -> dict[tuple[str, str], tuple[tuple[int, bool], ...]]:
    """(domain, op) -> ((since_version, deprecated), ...) ascending, from the installed onnx."""
    return _history(onnx.defs.get_all_schemas_with_history())


@functools.lru_cache(maxsize=1)
def ort_schemas() -> dict[tuple[str, str], tuple[tuple[int, bool], ...]]:
    """The same from ONNX Runtime's own registry: its contrib domains are not in onnx.defs."""
    from onnxruntime.capi.onnxruntime_pybind11_state import get_all_operator_schema

    return _history(get_all_operator_schema())


def _history(schemas) -> dict[tuple[str, str], tuple[tuple[int, bool], ...]]:
    table: dict[tuple[str, str], set] = {}
    for schema in schemas:
        table.setdefault((normalize(schema.domain), schema.name), set()).add(
            (int(schema.since_version), bool(schema.deprecated)))
    return {key: tuple(sorted(versions)) for key, versions in table.items()}


def model_opsets(model: onnx.ModelProto) -> dict[str, int]:
    """Domain -> imported version ('ai.onnx' as ''), after rules 1 and 3 (ModelLoadError)."""
    return check_opset_imports(model.opset_import, "the model")


def check_opset_imports(imports, owner: str) -> dict[str, int]:
    """Rules 1 and 3 on one opset_import list (`owner` names it in the error)."""
    opsets: dict[str, int] = {}
    for entry in imports:
        domain, version = normalize(entry.domain), int(entry.version)
        limit = ORT_MAX_OPSET.get(domain)
        if limit is not None and version > limit:
            raise ModelLoadError(f"invalid ONNX model: {owner} imports opset {version} of domain "
                                 f"{domain_label(domain)}; ONNX Runtime supports up to {limit}")
        if opsets.get(domain, version) != version:
            raise ModelLoadError(f"invalid ONNX model: {owner} imports domain {domain_label(domain)} twice, at "
                                 f"opsets {opsets[domain]} and {version} ('' and 'ai.onnx' are one domain)")
        opsets[domain] = version
    return opsets


def lower_unchanged_opset(model: onnx.ModelProto) -> onnx.ModelProto:
    """`model` stamped with ONNX Runtime's newest standard opset when it imports a newer one and
    every node means the same there (a copy; the model itself when nothing is lowered).

    Why: onnx stamps new models with its newest opset (27 and 28 with onnx 1.23), past what ONNX
    Runtime 1.31 loads (26). An operator's meaning is fixed by the schema in force at the imported
    opset; a node whose operator did not change after 26, or changed only in ways the node does
    not use (graphopt.frontend.opset_compat: new element types, new attributes left unset), means
    the same at 26. Any other node keeps the model refused (rule 1), naming it and why; so does an
    opset newer than the installed onnx defines (its operators cannot be checked).
    """
    limit = ORT_MAX_OPSET[""]
    stamps = [e for e in _opset_entries(model) if normalize(e.domain) == "" and e.version > limit]
    if not stamps:
        return model
    version = max(int(e.version) for e in stamps)
    if version > onnx.defs.onnx_opset_version():  # an opset onnx itself does not define: rule 1 refuses it
        return model
    types: dict[str, str] | None = None
    for node in _all_nodes(model):
        if normalize(node.domain) != "" or not _changed_since(node.op_type, limit, version):
            continue
        types = opset_compat.value_types(model) if types is None else types
        why = opset_compat.why_not_at(node, limit, version, types)
        if why:
            raise ModelLoadError(f"invalid ONNX model: the model imports opset {version} of domain '' (ai.onnx); "
                                 f"ONNX Runtime supports up to {limit}, and {node.op_type} changed after it: {why}")
    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    for entry in _opset_entries(copy):
        if normalize(entry.domain) == "" and entry.version > limit:
            entry.version = limit
    for node in _all_nodes(copy):
        if normalize(node.domain) == "" and node.op_type in opset_compat.OWN_RULES:
            _drop_moot_attributes(node)
    if types is not None and version >= opset_rewrites.REWRITE_OPSET:
        opset_rewrites.rewrite_graph(copy.graph, types)
    return copy


def _drop_moot_attributes(node: onnx.NodeProto) -> None:
    """Remove the attributes the older schema lacks once `opset_compat` judged them moot (Range's
    stash_type on non-float16 types, SpaceToDepth's mode=DCR), so checkers at 26 accept the node."""
    moot = opset_compat.OWN_RULES[node.op_type][1]
    kept = [a for a in node.attribute if a.name not in moot]
    del node.attribute[:]
    node.attribute.extend(kept)


def _opset_entries(model: onnx.ModelProto) -> list:
    return list(model.opset_import) + [e for f in model.functions for e in f.opset_import]


def _all_nodes(model: onnx.ModelProto) -> Iterator[onnx.NodeProto]:
    yield from walk(model.graph.node)
    for function in model.functions:
        yield from walk(function.node)


def _changed_since(op: str, older: int, newer: int) -> bool:
    """Whether standard `op`'s schema at opset `newer` differs from its schema at `older`
    (an op unknown to onnx, a local function's name, is judged elsewhere)."""
    try:
        schema = onnx.defs.get_schema(op, newer, "")
    except onnx.defs.SchemaError:
        return False
    return schema.since_version > older


def inline_functions(model: onnx.ModelProto) -> onnx.ModelProto:
    """`model` with its local functions inlined (onnx.inliner), as ONNX Runtime runs them.

    Why: TVM's importer never reads `model.functions`; a call became the standard op of the
    same name or failed. Refused first (ModelLoadError): a function whose opsets break rule 1
    or differ from the model's for a shared domain (inlining would need version conversion),
    one that shadows an op ONNX or ONNX Runtime defines (ORT runs that op, not the function),
    a body node or call whose domain is not imported.
    """
    if not model.functions:
        return model
    opsets = model_opsets(model)
    names = {(normalize(f.domain), f.name) for f in model.functions}
    _check_calls(model.graph.node, opsets, names, "the model", body=False)
    merged = dict(opsets)
    for function in model.functions:
        merged.update(_check_function(function, opsets, names))
    work = onnx.ModelProto()
    work.CopyFrom(model)
    del work.opset_import[:]
    work.opset_import.extend(onnx.helper.make_opsetid(d, v) for d, v in sorted(merged.items()))
    inlined = onnx.inliner.inline_local_functions(work)
    left = ", ".join(qualified(f.domain, f.name) for f in inlined.functions)
    if left:
        raise ModelLoadError(f"invalid ONNX model: model-local function(s) {left} could not be inlined")
    return inlined


def canonical_domains(model: onnx.ModelProto) -> onnx.ModelProto:
    """`model` with the standard domain written '' everywhere, a copy only when it said 'ai.onnx'.

    Why: ONNX Runtime and TVM read both names, but onnxslim's re-export drops an 'ai.onnx'
    opset_import and the folded model then fails the checker with a message about something else.
    """
    if not any(item.domain == "ai.onnx" for item in _with_domain(model)):
        return model
    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    for item in _with_domain(copy):
        item.domain = normalize(item.domain)
    return copy


def _with_domain(model: onnx.ModelProto) -> Iterator:
    """Every proto of `model` that names a domain: nodes (subgraphs and function bodies too),
    opset imports, functions."""
    yield from walk(model.graph.node)
    yield from model.opset_import
    for function in model.functions:
        yield function
        yield from walk(function.node)
        yield from function.opset_import


def _check_function(function: onnx.FunctionProto, model: dict[str, int], names: set) -> dict[str, int]:
    """Its opsets (to merge into the model's) once the refusals of `inline_functions` are passed."""
    label = f"model-local function {qualified(function.domain, function.name)}"
    opsets = check_opset_imports(function.opset_import, label)
    for domain, version in opsets.items():
        if model.get(domain, version) != version:
            raise ModelLoadError(f"invalid ONNX model: {label} imports opset {version} of domain "
                                 f"{domain_label(domain)}, the model {model[domain]}; graphopt does not convert "
                                 "opset versions")
    key = (normalize(function.domain), function.name)
    if key in onnx_schemas() or key in ort_schemas():
        raise ModelLoadError(f"invalid ONNX model: {label} has the name of an operator ONNX Runtime defines, "
                             "which it runs instead of the function")
    _check_calls(function.node, opsets, names, label, body=True)
    return opsets


def _check_calls(nodes, opsets: dict[str, int], names: set, owner: str, body: bool) -> None:
    """Every call of a local function (every node, in a function `body`) has its domain imported:
    ORT refuses it otherwise, and once inlined the call could no longer be checked."""
    for node in walk(nodes):
        domain = normalize(node.domain)
        if (body or (domain, node.op_type) in names) and domain not in opsets:
            raise ModelLoadError(f"invalid ONNX model: {owner} has node {qualified(node.domain, node.op_type)} "
                                 f"but no opset_import for domain {domain_label(domain)}")


def walk(nodes) -> Iterator[onnx.NodeProto]:
    """`nodes` and every node of their subgraphs, depth first."""
    for node in nodes:
        yield node
        for sub in subgraphs(node):
            yield from walk(sub.node)


def subgraphs(node: onnx.NodeProto) -> list[onnx.GraphProto]:
    """The graphs held by a node's attributes (If branches, Loop and Scan bodies)."""
    graphs = []
    for attr in node.attribute:
        graphs += [attr.g] if attr.HasField("g") else list(attr.graphs)
    return graphs


def normalize(domain: str) -> str:
    """'ai.onnx' is the standard domain's other name."""
    return "" if domain == "ai.onnx" else domain


def domain_label(domain: str) -> str:
    return "'' (ai.onnx)" if normalize(domain) == "" else repr(domain)


def qualified(domain: str, op: str) -> str:
    """`op` for the standard domain, `domain:op` otherwise, as ONNX Runtime writes it."""
    return op if normalize(domain) == "" else f"{domain}:{op}"
