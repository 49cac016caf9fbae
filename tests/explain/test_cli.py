"""`graphopt explain` through graphopt.cli.main: the happy path and every bad input as one line, exit 2."""

from __future__ import annotations

import json

import numpy as np
import pytest

from graphopt.cli import main
from graphopt.explain.samples import text_image

pytestmark = pytest.mark.slow

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: "), err
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    return err


def test_json_report_and_png(cls_artifact, cls_model, text_npy, tmp_path, capsys):
    out, saved = tmp_path / "map.png", tmp_path / "map.npy"
    code = main(["explain", str(cls_artifact), "--input", str(text_npy), "--method", "lime", "--samples", "200",
                 "--out", str(out), "--json", "--reference", str(cls_model), "--save-map", str(saved)])
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    assert report["correlation_with_reference"] >= 0.99
    assert report["deletion_auc"] < report["random_deletion_auc"]
    assert report["target"] == 0 and report["map_png"] == str(out)
    assert out.read_bytes()[:8] == PNG_MAGIC and out.stat().st_size > 5000
    assert np.load(saved).shape == (48, 192)


def test_text_report_and_missing_reference_warning(cls_artifact, tmp_path, capsys):
    upside_down = tmp_path / "flipped.npy"
    np.save(upside_down, text_image("Hello 2026", upside_down=True)[None])  # 1xCxHxW accepted too
    assert main(["explain", str(cls_artifact), "--input", str(upside_down), "--out", str(tmp_path / "m.png"),
                 "--patch", "12"]) == 0
    captured = capsys.readouterr()
    assert "target class 1" in captured.out  # the default target is the model's top class: upside down
    assert "correlation with reference: n/a" in captured.out
    assert "warning: no --reference" in captured.err


def _bad(tmp_path, name: str):
    if name == "wrong shape":
        path = tmp_path / "small.npy"
        np.save(path, np.zeros((3, 48, 48), dtype=np.float32))
        return ["--input", str(path)], "shape 3x48x48"
    if name == "not npy":
        path = tmp_path / "image.txt"
        path.write_text("not an array")
        return ["--input", str(path)], "not a .npy file"
    if name == "missing input":
        return ["--input", str(tmp_path / "absent.npy")], "cannot read"
    if name == "unknown method":
        return ["--method", "gradcam"], "unknown method 'gradcam'"
    if name == "target out of range":
        return ["--target", "2"], "target 2 is out of range"
    if name == "samples for occlusion":
        return ["--samples", "100"], "--samples applies to rise and lime"
    if name == "no out directory":
        return ["--out", str(tmp_path / "absent" / "map.png")], "no directory"
    if name == "not png":
        return ["--out", str(tmp_path / "map.jpg")], "must be a .png"
    if name == "foreign reference":
        path = tmp_path / "other.onnx"
        path.write_bytes(b"not the source model")
        return ["--reference", str(path)], "not the artifact's source model"
    if name == "nan input":
        path = tmp_path / "nan.npy"
        np.save(path, np.full((3, 48, 192), np.nan, dtype=np.float32))
        return ["--input", str(path)], "NaN"
    raise AssertionError(name)


BAD = ("wrong shape", "not npy", "missing input", "unknown method", "target out of range", "not png",
       "foreign reference", "nan input", "samples for occlusion", "no out directory")


@pytest.mark.parametrize("name", BAD)
def test_bad_input_is_one_line_exit_2_and_keeps_the_old_map(cls_artifact, text_npy, tmp_path, capsys, name):
    out = tmp_path / "map.png"
    out.write_bytes(b"an earlier map")
    args = {"--input": str(text_npy), "--out": str(out)}
    extra, expected = _bad(tmp_path, name)
    for key, value in zip(extra[::2], extra[1::2]):
        args[key] = value
    argv = ["explain", str(cls_artifact)] + [item for pair in args.items() for item in pair]
    assert main(argv) == 2
    assert expected in _one_line_error(capsys)
    assert out.read_bytes() == b"an earlier map"


def test_not_an_artifact(tmp_path, text_npy, capsys):
    assert main(["explain", str(tmp_path), "--input", str(text_npy), "--out", str(tmp_path / "m.png")]) == 2
    assert "not a graphopt artifact" in _one_line_error(capsys)
