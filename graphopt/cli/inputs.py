"""`graphopt run --input ...`: what an input argument may say, and how its array is read.

    NAME=FILE.npy              the array in a .npy file
    NAME=FILE.npz              the array stored under NAME, or the only array in the file
    NAME=FILE.npz:KEY          the array stored under KEY
    NAME=FILE.npy:bfloat16     raw bfloat16 bits stored as uint16 (or int16), reinterpreted;
    NAME=FILE.npz[:KEY]:bfloat16   the same inside a .npz

A bfloat16 input also takes a .npy/.npz written by `np.save(f, a.astype(ml_dtypes.bfloat16))`:
numpy stores that dtype as raw 2-byte records (`|V2`), which are read back as bfloat16 when the
artifact's input is bfloat16. Files are read without pickle (object arrays are refused). Every
problem is an InputError of one line; nothing here is imported before `run` needs it, so the
parser stays light (numpy is imported by the loader only).
"""

from __future__ import annotations

from typing import NamedTuple

from graphopt.errors import InputError, first_line

BFLOAT16 = "bfloat16"
FORMS = "NAME=FILE.npy, NAME=FILE.npz, NAME=FILE.npz:KEY (and :bfloat16 for raw bfloat16 bits)"


class InputSpec(NamedTuple):
    name: str
    path: str
    key: str | None = None  # the member of a .npz
    bfloat16_bits: bool = False  # the file holds uint16 bits of bfloat16 values

    def __str__(self) -> str:
        return f"{self.path}:{self.key}" if self.key is not None else self.path


def _is_npz(path: str) -> bool:
    return path.lower().endswith(".npz")


def _is_array_file(path: str) -> bool:
    return path.lower().endswith((".npy", ".npz"))


def parse_input_spec(text: str) -> InputSpec:
    """NAME=FILE[.npz:KEY][:bfloat16]; InputError (one line) on a malformed argument."""
    name, sep, rest = text.partition("=")
    if not sep or not name or not rest:
        raise InputError(f"expected {FORMS}, got {text!r}")
    bits = False
    head, colon, tail = rest.rpartition(":")
    if colon and tail == BFLOAT16 and (_is_array_file(head) or _is_npz(head.rpartition(":")[0])):
        rest, bits = head, True
    head, colon, tail = rest.rpartition(":")
    if colon and _is_npz(head):
        if not tail:
            raise InputError(f"empty .npz key after ':' in {text!r}; expected {FORMS}")
        return InputSpec(name, head, tail, bits)
    return InputSpec(name, rest, None, bits)


def check_unique(specs: list[InputSpec]) -> None:
    """A repeated input name is a mistake, not `the last one wins`."""
    seen = set()
    for spec in specs:
        if spec.name in seen:
            raise InputError(f"input {spec.name} is given more than once; give each --input NAME once")
        seen.add(spec.name)


def load_feeds(specs: list[InputSpec], signature: list[dict]) -> dict:
    """The arrays to feed, keyed by input name; dtypes as the artifact's signature says
    where a file's storage is ambiguous (bfloat16 as raw records or bits)."""
    dtypes = {s["name"]: s["dtype"] for s in signature}
    return {spec.name: _as_declared(spec, _read(spec), dtypes.get(spec.name)) for spec in specs}


def _read(spec: InputSpec):
    import zipfile

    import numpy as np

    kind = ".npz" if _is_npz(spec.path) else ".npy"
    try:
        loaded = np.load(spec.path, allow_pickle=False)
        if isinstance(loaded, np.lib.npyio.NpzFile):
            with loaded:
                return _member(spec, loaded)
        if spec.key is not None:
            raise InputError(f"{spec.path} is a .npy file, it has no key {spec.key!r}")
        return loaded
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise InputError(f"cannot read {spec} as {kind} for input {spec.name} ({first_line(exc)})") from None


def _member(spec: InputSpec, npz) -> object:
    keys = list(npz.files)
    listing = ", ".join(keys[:10]) + (", ..." if len(keys) > 10 else "") if keys else "nothing"
    if spec.key is not None:
        if spec.key not in keys:
            raise InputError(f"{spec.path} has no array {spec.key!r} (it holds {listing})")
        return npz[spec.key]
    if spec.name in keys:
        return npz[spec.name]
    if len(keys) == 1:
        return npz[keys[0]]
    raise InputError(f"{spec.path} holds {len(keys)} arrays ({listing}), none named {spec.name}: "
                     f"write {spec.name}={spec.path}:KEY")


def _as_declared(spec: InputSpec, array, dtype: str | None):
    """bfloat16 arrives as |V2 records (ml_dtypes saved by numpy) or, with :bfloat16, as
    uint16/int16 bits; anything else is left to the runtime's signature check."""
    import numpy as np

    if spec.bfloat16_bits and dtype != BFLOAT16:
        raise InputError(f"--input {spec.name}=...:bfloat16 but input {spec.name} is {dtype or 'not an input'}")
    if dtype != BFLOAT16 or str(array.dtype) == BFLOAT16:
        return array
    raw = array.dtype == np.dtype("V2")
    if not raw and not (spec.bfloat16_bits and array.dtype in (np.uint16, np.int16)):
        hint = (f"; if they are raw bfloat16 bits write {spec.name}={spec}:bfloat16"
                if array.dtype in (np.uint16, np.int16) else "")
        raise InputError(f"input {spec.name} is bfloat16 but {spec} holds {array.dtype}{hint} "
                         "(save a bfloat16 array with np.save(f, a.astype(ml_dtypes.bfloat16)))")
    try:
        import ml_dtypes
    except ImportError:
        raise InputError("bfloat16 inputs need the ml_dtypes package (pip install ml_dtypes)") from None
    return np.ascontiguousarray(array).view(ml_dtypes.bfloat16)


# ---------------------------------------------------------------- --output-dir


def check_output_dir(path) -> None:
    """Before running: --output-dir must be a directory or creatable as one."""
    from pathlib import Path

    path = Path(path)
    if path.exists() and not path.is_dir():
        raise InputError(f"--output-dir {path} exists and is not a directory")
    parent = path
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if parent.exists() and not parent.is_dir():
        raise InputError(f"--output-dir {path}: {parent} is not a directory")


def write_outputs(path, outputs: dict) -> None:
    """Each output as NAME.npy (a name's unsafe characters become `_`); one line on failure."""
    from pathlib import Path

    import numpy as np

    path = Path(path)
    check_output_dir(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
        for name, value in outputs.items():
            np.save(path / f"{safe_name(name)}.npy", value)
    except OSError as exc:
        raise InputError(f"cannot write outputs to --output-dir {path} ({exc.strerror or first_line(exc)})") from None


def safe_name(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
