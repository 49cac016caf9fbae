"""Real architectures nobody on this project wrote, obtainable without a model hub.

Why: hand-built examples only show the cases we thought of. These come from two
registry packages, so tests and benchmarks can fetch them on any machine:

* the `onnx` package's "light" models (onnx/backend/test/data/light): classic
  CNN structures (ResNet-50, DenseNet-121, Inception, SqueezeNet, VGG-19...) whose
  large weights were replaced by `ConstantOfShape(value=0.02)`. `light_model`
  turns each such node back into a seeded random initializer scaled by its role,
  so outputs are finite and not degenerate (all-0.02 weights make every channel
  equal), and numeric comparisons against ONNX Runtime mean something.
* the trained PP-OCR models inside the `rapidocr-onnxruntime` wheel (text
  detection, orientation classifier, recognizer), with dynamic dims that must be
  fixed (see OCR_INPUT_SHAPES).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import zipfile
from collections import defaultdict
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper, version_converter

from graphopt.errors import ModelLoadError, first_line
from graphopt.examples.models import IR_VERSION, OPSET

LIGHT_DIR = Path(onnx.__file__).parent / "backend" / "test" / "data" / "light"
LIGHT_MODELS = ("bvlc_alexnet", "densenet121", "inception_v1", "inception_v2", "resnet50",
                "shufflenet", "squeezenet", "vgg19", "zfnet512")

LOGIT_STD = 2.0  # spread of the classifier's logits: a Softmax neither flat nor one-hot

# Ops a weight may pass through unchanged in meaning before its real consumer.
_PASS_THROUGH = frozenset({"Reshape", "Unsqueeze", "Squeeze", "Flatten", "Identity"})


def light_model(name: str, seed: int = 0) -> onnx.ModelProto:
    """The onnx package's `light_<name>.onnx` with its 0.02 weights made random.

    Real (small) initializers the file keeps are left as they are. The result is
    opset 17 / IR 10 (from opset 9 / IR 3), has no initializers among its graph
    inputs (its only input is the image), and its classifier is scaled so the
    logits have a standard deviation near LOGIT_STD on a N(0, 1) image.
    """
    path = LIGHT_DIR / f"light_{name}.onnx"
    if not path.is_file():
        raise ModelLoadError(f"no light model {name!r}; known: {', '.join(LIGHT_MODELS)}")
    # Convert while the weights are still tiny ConstantOfShape nodes (cheap to copy);
    # the converter rewrites opset-9 Unsqueeze, Dropout and 2D-coerced Softmax.
    model = version_converter.convert_version(onnx.load(str(path)), OPSET)
    _randomize(model.graph, np.random.default_rng(seed))
    _drop_unused(model.graph)  # IR 3 wants initializers listed as inputs; IR 10 not
    model.ir_version = IR_VERSION
    _calibrate_logits(model)
    # No onnx.checker here: it re-serializes the model (4 s for VGG-19's 550 MB) and
    # only nodes were swapped for initializers; tests check every light model.
    return model


def _randomize(graph: onnx.GraphProto, rng: np.random.Generator) -> None:
    """Replace each ConstantOfShape(shape initializer) by a random initializer."""
    consumers = _consumers(graph)
    shapes = {t.name: t for t in graph.initializer}
    kept, weights = [], []
    for node in graph.node:
        if node.op_type == "ConstantOfShape" and node.input[0] in shapes:
            dims = tuple(int(d) for d in numpy_helper.to_array(shapes[node.input[0]]))
            value = _random_weight(_role(node.output[0], consumers), dims, rng)
            weights.append(numpy_helper.from_array(value, node.output[0]))
        else:
            kept.append(node)
    graph.ClearField("node")
    graph.node.extend(kept)
    graph.initializer.extend(weights)


def _calibrate_logits(model: onnx.ModelProto) -> None:
    """Scale the layer feeding the final Softmax so its logits have std LOGIT_STD.

    Why: random weights let activations grow through residual sums (ResNet-50,
    ShuffleNet) or shrink elsewhere (Inception v1), so the Softmax comes out one-hot
    or flat, and a comparison of it against ONNX Runtime tests almost nothing.
    One ONNX Runtime run on a N(0, 1) image measures the logits; the classifier's
    weight and bias are divided by their std. Models without such a layer are kept.
    """
    found = _classifier(model.graph)
    if found is None:
        return
    logits, weights = found
    import onnxruntime as ort

    outputs = model.graph.output
    outputs.append(onnx.helper.make_empty_tensor_value_info(logits))
    try:  # probe in place: copying a 500 MB model costs more than the run
        session = ort.InferenceSession(model.SerializeToString(),
                                       providers=["CPUExecutionProvider"])
    finally:
        del outputs[len(outputs) - 1]
    rng = np.random.default_rng(0)
    feeds = {i.name: rng.standard_normal(i.shape).astype(np.float32) for i in session.get_inputs()}
    std = float(np.std(session.run([logits], feeds)[0]))
    if not np.isfinite(std) or std == 0.0:
        return
    inits = {t.name: t for t in model.graph.initializer}
    for name in weights:
        scaled = numpy_helper.to_array(inits[name]) * np.float32(LOGIT_STD / std)
        inits[name].CopyFrom(numpy_helper.from_array(scaled.astype(np.float32), name))


def _classifier(graph: onnx.GraphProto) -> tuple[str, list[str]] | None:
    """(logits tensor, its weight and bias initializers) of the Gemm/Conv that feeds
    a Softmax, looking through reshapes on both sides; None if there is none.
    """
    producer = {out: node for node in graph.node for out in node.output}
    inits = {t.name for t in graph.initializer}

    def source(name: str) -> str:
        while name in producer and producer[name].op_type in _PASS_THROUGH:
            name = producer[name].input[0]
        return name

    for softmax in (n for n in graph.node if n.op_type == "Softmax"):
        node = producer.get(source(softmax.input[0]))
        if node is None or node.op_type not in ("Gemm", "Conv") or len(node.input) != 3:
            continue
        weights = [source(name) for name in node.input[1:3]]
        if all(name in inits for name in weights):
            return node.output[0], weights
    return None


def _consumers(graph: onnx.GraphProto) -> dict[str, list[tuple[onnx.NodeProto, int]]]:
    """Map tensor name -> [(consuming node, input index)]."""
    uses: dict[str, list[tuple[onnx.NodeProto, int]]] = defaultdict(list)
    for node in graph.node:
        for index, name in enumerate(node.input):
            uses[name].append((node, index))
    return uses


def _role(tensor: str, consumers) -> tuple[str, int, onnx.NodeProto | None]:
    """(op type, input index, node) of the first real consumer, through reshapes."""
    for _ in range(8):
        uses = consumers.get(tensor, [])
        if not uses:
            return ("", -1, None)
        node, index = uses[0]
        if node.op_type not in _PASS_THROUGH:
            return (node.op_type, index, node)
        tensor = node.output[0]
    return ("", -1, None)


def _random_weight(role, dims: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    """A tensor whose scale suits its role: He for Conv/Gemm weights (std sqrt(2/fan_in)),
    near-identity for BatchNormalization scale/variance and Mul scales, small for biases.
    """
    op, index, node = role
    if op in ("Conv", "Gemm", "MatMul") and index == 1:
        std = np.float32(np.sqrt(2.0 / _fan_in(op, node, dims)))
        return rng.standard_normal(dims, dtype=np.float32) * std
    if (op, index) in (("BatchNormalization", 1), ("BatchNormalization", 4), ("Mul", 1)):
        return rng.uniform(0.5, 1.5, dims).astype(np.float32)
    # biases, BN mean/shift, Add shifts, anything unforeseen
    return rng.standard_normal(dims, dtype=np.float32) * np.float32(0.1)


def _fan_in(op: str, node: onnx.NodeProto, dims: tuple[int, ...]) -> int:
    """Inputs summed per output: all but dim 0 for Conv and Gemm(transB=1), else dim 0."""
    trans_b = any(a.name == "transB" and a.i for a in node.attribute)
    if op == "Conv" or (op == "Gemm" and trans_b):
        return max(1, int(np.prod(dims[1:])))
    return max(1, dims[0])


def _drop_unused(graph: onnx.GraphProto) -> None:
    """Remove the now-dead shape initializers and every initializer listed as an input."""
    used = {name for node in graph.node for name in node.input}
    used |= {o.name for o in graph.output}
    inits = [t for t in graph.initializer if t.name in used]
    init_names = {t.name for t in inits}
    inputs = [vi for vi in graph.input if vi.name not in init_names and vi.name in used]
    graph.ClearField("initializer")
    graph.initializer.extend(inits)
    graph.ClearField("input")
    graph.input.extend(inputs)


# --- PP-OCR models from the rapidocr-onnxruntime wheel --------------------------

RAPIDOCR_VERSION = "1.4.4"
RAPIDOCR_WHEEL = f"rapidocr_onnxruntime-{RAPIDOCR_VERSION}-py3-none-any.whl"
# name -> (path inside the wheel, sha256 of that file): a changed upload is refused.
RAPIDOCR_MODELS = {
    "det": ("rapidocr_onnxruntime/models/ch_PP-OCRv4_det_infer.onnx",
            "d2a7720d45a54257208b1e13e36a8479894cb74155a5efe29462512d42f49da9"),
    "cls": ("rapidocr_onnxruntime/models/ch_ppocr_mobile_v2.0_cls_infer.onnx",
            "e47acedf663230f8863ff1ab0e64dd2d82b838fceb5957146dab185a89d6215c"),
    "rec": ("rapidocr_onnxruntime/models/ch_PP-OCRv4_rec_infer.onnx",
            "48fc40f24f6d2a207a2b1091d3437eb3cc3eb6b676dc3ef9c37384005483683b"),
}
# The smallest fixed input sizes checked to import into TVM 0.27 and match ONNX Runtime
# (each compiles in ~5 s on 2 cores). det needs H and W multiples of 32 (it works at
# 32x32); cls was trained at 48x192 (48x48 works too); rec at height 48, any width
# (32 gives 4 time steps, the usual 320 gives 40). det ends in a Sigmoid that a N(0, 1)
# "image" drives to ~1e-12; ONNX Runtime's approximate sigmoid returns 0 below about
# -17, so compare det's logits (the Sigmoid's input), which match to ~1e-6.
OCR_INPUT_SHAPES = {
    "det": {"x": (1, 3, 32, 32)},
    "cls": {"x": (1, 3, 48, 192)},
    "rec": {"x": (1, 3, 48, 32)},
}


def default_cache_dir() -> Path:
    """$GRAPHOPT_CACHE, else ~/.cache/graphopt: downloaded wheels and extracted models."""
    root = os.environ.get("GRAPHOPT_CACHE") or Path.home() / ".cache" / "graphopt"
    return Path(root) / "models"


def rapidocr_model(name: str, cache_dir: str | os.PathLike | None = None) -> Path:
    """Path to the PP-OCR `name` ('det', 'cls', 'rec') model, fetched once and cached.

    Raises ModelLoadError (one line, with pip's reason) if the pinned wheel cannot be
    downloaded or does not hold the expected file.
    """
    if name not in RAPIDOCR_MODELS:
        raise ModelLoadError(f"no OCR model {name!r}; known: {', '.join(RAPIDOCR_MODELS)}")
    member, digest = RAPIDOCR_MODELS[name]
    cache = Path(cache_dir) if cache_dir else default_cache_dir()
    target = cache / Path(member).name
    if target.is_file() and _sha256(target.read_bytes()) == digest:
        return target
    data = _read_member(_wheel(cache), member)
    if _sha256(data) != digest:
        raise ModelLoadError(f"{member} in {RAPIDOCR_WHEEL} does not have the pinned sha256")
    tmp = target.with_suffix(".tmp")
    tmp.write_bytes(data)
    tmp.replace(target)  # atomic: a concurrent reader never sees half a file
    return target


def _wheel(cache: Path) -> Path:
    """The pinned wheel in `cache`, downloaded with pip if it is not there yet."""
    wheel = cache / RAPIDOCR_WHEEL
    if wheel.is_file():
        return wheel
    cache.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "download", f"rapidocr-onnxruntime=={RAPIDOCR_VERSION}",
           "--no-deps", "--only-binary=:all:", "--disable-pip-version-check", "-q",
           "-d", str(cache)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ModelLoadError(f"cannot download {RAPIDOCR_WHEEL}: {first_line(exc)}") from exc
    if proc.returncode != 0 or not wheel.is_file():
        reason = (proc.stderr.strip().splitlines() or ["no wheel written"])[-1]
        raise ModelLoadError(f"cannot download {RAPIDOCR_WHEEL}: {reason}")
    return wheel


def _read_member(wheel: Path, member: str) -> bytes:
    try:
        with zipfile.ZipFile(wheel) as archive:
            return archive.read(member)
    except (zipfile.BadZipFile, KeyError, OSError) as exc:
        raise ModelLoadError(f"cannot read {member} from {wheel.name}: {first_line(exc)}") from exc


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
