"""`explain_artifact`: one input through one method, checked against the reference.

Order: load the artifact and the input, fix the target (the top class unless
given) and the score (log-odds for probability outputs), compute the map, run the
same method with the same seed on the source model in ONNX Runtime when one is
given (its file must hash to the manifest's `source_sha256`: a map compared with
another model's proves nothing), then the deletion check on the artifact.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from graphopt.artifact import sha256_file
from graphopt.errors import InputError, first_line
from graphopt.explain.fidelity import Deletion, deletion_check, pearson
from graphopt.explain.lime import lime_map
from graphopt.explain.occlusion import occlusion_map
from graphopt.explain.perturb import mean_baseline
from graphopt.explain.predictors import ArtifactPredictor, OnnxPredictor, Predictor
from graphopt.explain.rise import rise_map
from graphopt.explain.scores import check_target, is_probability, target_score

METHODS = ("occlusion", "rise", "lime")
DEFAULT_SAMPLES = {"occlusion": 0, "rise": 1000, "lime": 500}  # occlusion's count follows from --patch
MAX_SAMPLES = 100_000
NPY_MAGIC = b"\x93NUMPY"


@dataclass
class ExplainReport:
    method: str
    target: int
    score_kind: str  # "log_odds" or "raw"
    image: np.ndarray  # (C, H, W), as explained
    target_score: float
    saliency: np.ndarray
    deletion: Deletion
    seconds: dict[str, float]
    samples: int
    evaluations: int  # images the artifact scored for the map (deletion curves not counted)
    patch: int
    seed: int
    reference_map: np.ndarray | None = None
    correlation_with_reference: float | None = None
    class_scores: list[float] = field(default_factory=list)

    def top_classes(self, count: int = 5) -> list[list]:
        """[[class, output], ...] for the model's `count` highest outputs (rec has 6625 classes)."""
        order = np.argsort(self.class_scores)[::-1][:count]
        return [[int(k), self.class_scores[k]] for k in order]

    def as_json(self) -> dict:
        return {"method": self.method, "target": self.target, "score": self.score_kind,
                "target_score": self.target_score, "top_classes": self.top_classes(),
                "correlation_with_reference": self.correlation_with_reference,
                "deletion_auc": self.deletion.deletion_auc, "random_deletion_auc": self.deletion.random_deletion_auc,
                "deletion_curve": self.deletion.curve,
                "random_deletion_curve": self.deletion.random_curve, "samples": self.samples,
                "evaluations": self.evaluations, "patch": self.patch,
                "seed": self.seed, "seconds": self.seconds}


def load_input(path: str | Path, image_shape: tuple[int, ...], dtype) -> np.ndarray:
    """The .npy at `path` as one (C, H, W) image of the artifact's dtype; InputError otherwise."""
    try:
        with open(path, "rb") as f:
            if f.read(len(NPY_MAGIC)) != NPY_MAGIC:
                raise InputError(f"{path} is not a .npy file (save the image with numpy.save)")
        array = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        raise InputError(f"cannot read {path} as .npy ({first_line(exc)})") from None
    if not isinstance(array, np.ndarray) or array.dtype.kind not in "fiu":
        raise InputError(f"{path}: expected a numeric array, got dtype {getattr(array, 'dtype', type(array).__name__)}")
    if array.shape == (1, *image_shape):
        array = array[0]
    if array.shape != tuple(image_shape):
        shape = "x".join(map(str, array.shape)) or "scalar"
        want = "x".join(map(str, image_shape))
        raise InputError(f"{path}: input has shape {shape}, the artifact takes one image of {want} (or 1x{want})")
    if not np.isfinite(array).all():
        raise InputError(f"{path}: input holds NaN or infinite values")
    return array.astype(dtype)


def _method_map(method: str, predictor: Predictor, image, target, kind, patch, samples, seed) -> tuple[np.ndarray, int]:
    """The map and how many images the model scored for it."""
    scored = [0]

    def score(images: np.ndarray) -> np.ndarray:
        scored[0] += len(images)
        return target_score(predictor.predict(images), target, kind)

    return _dispatch(method, score, image, patch, samples, seed), scored[0]


def _dispatch(method: str, score, image, patch, samples, seed) -> np.ndarray:
    baseline = mean_baseline(image)
    rng = np.random.default_rng(seed)
    if method == "occlusion":
        return occlusion_map(score, image, baseline, patch)
    if method == "rise":
        return rise_map(score, image, baseline, patch, samples, rng)
    return lime_map(score, image, baseline, patch, samples, rng)


def _check_options(method: str, samples: int, patch: int) -> None:
    if method not in METHODS:
        raise InputError(f"unknown method {method!r}; choose from {', '.join(METHODS)}")
    if method == "occlusion" and samples:
        raise InputError("--samples applies to rise and lime; occlusion's run count follows from --patch")
    if method != "occlusion" and not 2 <= samples <= MAX_SAMPLES:
        raise InputError(f"--samples must be between 2 and {MAX_SAMPLES}, got {samples}")
    if patch < 1:
        raise InputError(f"--patch must be at least 1 pixel, got {patch}")


def _reference(path: Path, predictor: ArtifactPredictor) -> OnnxPredictor:
    """The source model in ONNX Runtime, once its bytes hash to the manifest's source_sha256."""
    if not path.is_file():
        raise InputError(f"{path}: no such reference model")
    digest = sha256_file(path)
    if digest != predictor.source_sha256:
        raise InputError(f"{path} is not the artifact's source model (sha-256 {digest[:12]}, "
                         f"artifact compiled from {predictor.source_sha256[:12]})")
    return OnnxPredictor(path, predictor.image_shape, str(predictor.dtype))


def default_patch(image_shape: tuple[int, ...]) -> int:
    """A sixth of the shorter side (8 px at 48x192), at least 4: text-stroke sized."""
    return max(4, min(image_shape[-2:]) // 6)


def explain_artifact(art_dir: str | Path, input_path: str | Path, method: str = "occlusion",
                     target: int | None = None, samples: int | None = None, patch: int | None = None,
                     seed: int = 0, reference: str | Path | None = None) -> ExplainReport:
    """Saliency of one input through an artifact, plus its fidelity checks."""
    samples = DEFAULT_SAMPLES.get(method, 0) if samples is None else samples
    _check_options(method, samples, patch if patch is not None else 1)
    predictor = ArtifactPredictor(art_dir)
    patch = default_patch(predictor.image_shape) if patch is None else patch
    image = load_input(input_path, predictor.image_shape, predictor.dtype)
    ref = _reference(Path(reference), predictor) if reference is not None else None
    scores = predictor.predict(image[None])
    target = int(np.argmax(scores[0])) if target is None else target
    check_target(target, scores.shape[1])
    kind = "log_odds" if is_probability(scores) else "raw"
    seconds: dict[str, float] = {}
    start = time.perf_counter()
    saliency, evaluations = _method_map(method, predictor, image, target, kind, patch, samples, seed)
    seconds["explain"] = time.perf_counter() - start
    reference_map = correlation = None
    if ref is not None:
        start = time.perf_counter()
        reference_map, _ = _method_map(method, ref, image, target, kind, patch, samples, seed)
        seconds["reference"] = time.perf_counter() - start
        correlation = pearson(saliency, reference_map)
    start = time.perf_counter()
    deletion = deletion_check(lambda x: target_score(predictor.predict(x), target, "raw"),  # the probability
                              image, mean_baseline(image), saliency, seed)
    seconds["deletion"] = time.perf_counter() - start
    return ExplainReport(method, target, kind, image, float(target_score(scores, target, kind)[0]), saliency,
                         deletion, seconds, samples, evaluations, patch, seed, reference_map, correlation,
                         [float(v) for v in scores[0]])
