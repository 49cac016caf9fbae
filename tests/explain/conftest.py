"""The PP-OCR orientation classifier (trained weights, rapidocr wheel) compiled once per session,
and a rendered text line it is confident about."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from graphopt.errors import ModelLoadError
from graphopt.examples.real_models import OCR_INPUT_SHAPES, rapidocr_model
from graphopt.explain.samples import text_image


@pytest.fixture(scope="session")
def cls_model() -> Path:
    try:
        return rapidocr_model("cls")
    except ModelLoadError as exc:
        pytest.skip(f"OCR model unavailable: {exc}")


@pytest.fixture(scope="session")
def cls_artifact(cls_model, tmp_path_factory) -> Path:
    from graphopt.compiler import CompileOptions, compile_model

    out = tmp_path_factory.mktemp("explain") / "cls"
    compile_model(cls_model, out, CompileOptions(input_shapes=OCR_INPUT_SHAPES["cls"], time_limit=1.0))
    return out


@pytest.fixture(scope="session")
def text_npy(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("inputs") / "text.npy"
    np.save(path, text_image("Hello 2026"))
    return path
