"""The variants a service holds: verified artifacts, how a request's rows reach each one, and
each one's service time measured at start.

A variant is one single-input artifact. Its input's first axis is the batch axis, and every
output must carry the same axis so a batch's results can be handed back row by row. Two kinds:

  * fixed batch: the axis has one size B, the variant's capacity in rows (1 means no
    batching); a batch of fewer rows is padded with zeros to B (it costs a full batch);
  * variable batch: a range artifact whose batch axis is a symbol LO..HI (`graphopt compile
    --input-shape x=1..32x...`; only the batch axis may be a range here). A batch runs at the
    size actually queued, with no padding, or padded to the smallest of the configured
    `buckets` that holds it when buckets are given (fewer sizes to learn; none by default).
    Its capacity is HI, capped by --max-batch; a batch smaller than LO is padded to LO.

Requests carry rows of the service's sample shape: that of the largest variant. A variant with a
smaller spatial size (an input-resolution variant of a CNN, NCHW) gets the rows resized
(area average down, bilinear up), so every variant answers the same request.

Loading goes through graphopt.runtime.load, which re-hashes every file of the artifact
against its manifest and refuses a mismatch: an artifact holds native code, so nothing
unverified is ever loaded. `NAME=ART@ID` pins the artifact's content id and trusted keys
(--trusted-key, GRAPHOPT_TRUSTED_KEYS) demand a signature: what stops a rewritten manifest.
"""

from __future__ import annotations

import bisect
import functools
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from graphopt.errors import ArtifactError, InputError


@dataclass(frozen=True)
class VariantSpec:
    """`NAME=ART[@ID][:quality]` from the command line; quality defaults to 1.0 (all equal);
    ID pins the artifact's content id (or its first 12+ hex digits)."""

    name: str
    path: Path
    quality: float = 1.0
    expect_id: str | None = None

    @staticmethod
    def parse(text: str) -> VariantSpec:
        name, sep, rest = text.partition("=")
        if not sep or not name or not rest:
            raise InputError(f"--variant expects NAME=ART[@ID][:QUALITY], got {text!r}")
        path, colon, tail = rest.rpartition(":")
        if colon and path:
            try:
                quality = float(tail)
            except ValueError:
                pass  # a colon inside the path itself
            else:
                return _pinned(name, path, quality)
        return _pinned(name, rest, 1.0)


def _pinned(name: str, art: str, quality: float) -> VariantSpec:
    """ART[@ID]: the text after the last @, when all hex digits, pins the content id."""
    from graphopt.artifact import split_pin

    path, pin = split_pin(art)
    return VariantSpec(name, Path(path), quality, pin)


@functools.cache
def _resize_matrix(src: int, dst: int) -> np.ndarray:
    """[dst, src] weights: area average when shrinking, bilinear (half-pixel centres) when growing.
    Cached (read-only): a variant resizes every batch between the same two sizes."""
    m = np.zeros((dst, src), np.float32)
    scale = src / dst
    for i in range(dst):
        if dst <= src:
            lo, hi = i * scale, (i + 1) * scale
            for j in range(int(np.floor(lo)), min(int(np.ceil(hi)), src)):
                m[i, j] = min(hi, j + 1) - max(lo, j)
        else:
            x = min(max((i + 0.5) * scale - 0.5, 0.0), src - 1.0)
            j = int(np.floor(x))
            m[i, j] += 1.0 - (x - j)
            m[i, min(j + 1, src - 1)] += x - j
    m /= m.sum(axis=1, keepdims=True)
    m.flags.writeable = False
    return m


def resize_rows(rows: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Resizes the last two axes of `rows` [N, ..., H, W] to shape[-2:]."""
    h = _resize_matrix(rows.shape[-2], shape[-2])
    w = _resize_matrix(rows.shape[-1], shape[-1])
    out = np.einsum("ih,...hw,jw->...ij", h, rows.astype(np.float32), w)
    return out.astype(rows.dtype)


class Variant:
    """One loaded artifact; `run(rows)` pads to the run size (see the module docstring) and
    returns per-row outputs."""

    def __init__(self, spec: VariantSpec, max_batch: int | None = None, trusted_keys=None,
                 buckets: tuple[int, ...] | None = None) -> None:
        from graphopt.runtime import load

        self.name, self.quality = spec.name, spec.quality
        # verifies every file's sha-256, the pinned id and the signature (ArtifactError if not)
        self.session = load(spec.path, expect_id=spec.expect_id, trusted_keys=trusted_keys)
        if len(self.session.inputs) != 1:
            raise ArtifactError(f"{spec.path}: serve needs single-input artifacts, this one has "
                                f"{len(self.session.inputs)}")
        sig = self.session.inputs[0]
        if not sig["shape"]:
            raise ArtifactError(f"{spec.path}: input {sig['name']} is a scalar; serve needs a batch axis")
        self.input_name, self.dtype = sig["name"], np.dtype(sig["dtype"])
        self.batch_size = int(sig["shape"][0])  # a range artifact's is its maximum
        self.sample_shape = tuple(int(d) for d in sig["shape"][1:])
        self.batch_range = batch_range(spec.path, self.session)
        self.capacity = min(self.batch_size, max_batch) if max_batch else self.batch_size
        self.run_sizes = run_sizes(self.batch_range, self.capacity, buckets) if self.batch_range else [self.batch_size]
        for out in self.session.outputs:
            if not out["shape"] or int(out["shape"][0]) != self.batch_size:
                raise ArtifactError(f"{spec.path}: output {out['name']} lacks the batch axis of size {self.batch_size}")

    @property
    def variable(self) -> bool:
        """True when a batch runs at the size queued (a range artifact), not padded to a fixed one."""
        return self.batch_range is not None

    def run_size(self, rows: int) -> int:
        """The batch size `rows` rows run at: the artifact's batch (fixed), or the smallest run size
        that holds them (variable: the rows themselves unless buckets or the range's minimum pad)."""
        k = bisect.bisect_left(self.run_sizes, rows)
        if rows > self.batch_size or k == len(self.run_sizes):
            raise InputError(f"variant {self.name}: {rows} rows exceed its batch size {self.run_sizes[-1]}")
        return self.run_sizes[k]

    def prepare(self, rows: np.ndarray) -> np.ndarray:
        """Rows of the service's sample shape -> this variant's sample shape (resized if it differs)."""
        if rows.shape[1:] != self.sample_shape:
            rows = resize_rows(rows, self.sample_shape)
        return rows

    def run(self, rows: np.ndarray) -> tuple[dict[str, np.ndarray], float]:
        """(outputs cut to len(rows), seconds of the run); rows beyond len(rows) are zero padding."""
        n, size = len(rows), self.run_size(len(rows))
        rows = self.prepare(rows)
        if size != len(rows):
            padded = np.zeros((size, *self.sample_shape), self.dtype)
            padded[:len(rows)] = rows
            rows = padded
        result = self.session.run_timed({self.input_name: np.ascontiguousarray(rows, self.dtype)})
        return {k: v[:n] for k, v in result.outputs.items()}, result.seconds

    def measure(self, rows: int | None = None, min_runs: int = 5, max_runs: int = 30,
                min_seconds: float = 0.3) -> tuple[float, float]:
        """(median, median absolute deviation) of runs of `rows` rows (default: a full batch)
        after two warm-up runs."""
        batch = np.zeros((rows or self.batch_size, *self.sample_shape), self.dtype)
        for _ in range(2):
            self.run(batch)
        times: list[float] = []
        began = time.perf_counter()
        while len(times) < max_runs and (len(times) < min_runs or time.perf_counter() - began < min_seconds):
            times.append(self.run(batch)[1])
        median = statistics.median(times)
        return median, statistics.median(abs(t - median) for t in times)

    def measure_sizes(self) -> dict[int, tuple[float, float]]:
        """Start-up times at the probe sizes (see probe_sizes); one full batch for a fixed variant."""
        if not self.variable:
            return {self.batch_size: self.measure()}
        return {size: self.measure(size, min_seconds=0.15) for size in probe_sizes(self.run_sizes)}


def batch_range(path: Path, session) -> tuple[int, int] | None:
    """(LO, HI) when the artifact's batch axis is a range symbol; None for a fixed batch.

    ArtifactError when another axis is a range too (a request's sample shape must be fixed),
    or an output does not carry the batch symbol first (rows could not be handed back)."""
    symbols = session.symbols or {}
    sig = session.inputs[0]
    dims = sig.get("dims", sig["shape"])
    others = [d for d in dims[1:] if isinstance(d, str)]
    if others:
        raise ArtifactError(f"{path}: serve takes a range on the batch axis only; input {sig['name']} "
                            f"also ranges over {', '.join(others)}")
    if not isinstance(dims[0], str):
        return None
    for out in session.outputs:
        if out.get("dims", [None])[0] != dims[0]:
            raise ArtifactError(f"{path}: output {out['name']} does not carry the batch symbol {dims[0]} first")
    lo, hi = symbols[dims[0]]
    return int(lo), int(hi)


def run_sizes(bounds: tuple[int, int], capacity: int, buckets: tuple[int, ...] | None) -> list[int]:
    """The sizes a variable batch may run at: every size LO..capacity, or the buckets inside
    LO..capacity plus the capacity itself (so a full batch always fits)."""
    lo, _ = bounds
    top = max(capacity, lo)
    if not buckets:
        return list(range(lo, top + 1))
    return sorted({b for b in buckets if lo <= b < top} | {top})


def probe_sizes(sizes: list[int]) -> list[int]:
    """Sizes measured at start: the smallest, the largest and the powers of two between (a few
    short runs each); the others are interpolated and then learnt online."""
    lo, hi = sizes[0], sizes[-1]
    wanted = {lo, hi} | {1 << k for k in range(hi.bit_length()) if lo < 1 << k < hi}
    return sorted({sizes[bisect.bisect_left(sizes, w)] for w in wanted})


def sample_shape_of(variants: list[Variant]) -> tuple[int, ...]:
    """The request's sample shape (the largest variant's); checks every variant can take it."""
    native = max(variants, key=lambda v: int(np.prod(v.sample_shape)))
    for v in variants:
        if v.dtype != native.dtype:
            raise ArtifactError(f"variants {native.name} and {v.name} disagree on the input dtype "
                                f"({native.dtype} vs {v.dtype})")
        same_lead = v.sample_shape[:-2] == native.sample_shape[:-2] and len(v.sample_shape) >= 3
        if v.sample_shape != native.sample_shape and not same_lead:
            raise ArtifactError(f"variants {native.name} {list(native.sample_shape)} and {v.name} "
                                f"{list(v.sample_shape)} take different inputs (only H, W of CHW may differ)")
    return native.sample_shape


def load_variants(specs: list[VariantSpec], max_batch: int | None = None, trusted_keys=None,
                  buckets: tuple[int, ...] | None = None) -> list[Variant]:
    """Loads (hash-verified) every variant; `buckets` applies to variable-batch ones only."""
    names = [s.name for s in specs]
    if len(set(names)) != len(names):
        raise InputError(f"variant names must be distinct, got {names}")
    variants = [Variant(s, max_batch, trusted_keys, buckets) for s in specs]
    sample_shape_of(variants)
    return variants
