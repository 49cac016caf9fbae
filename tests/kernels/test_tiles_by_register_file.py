"""The GEMM rule's default register tiles depend on the register file: 16 vector registers (AVX2) or 32
(AVX-512). The choices are checked for both on explicit targets (whatever this host is), and the kernels they
give on this host are checked against ONNX Runtime."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
import tvm
from onnx import TensorProto, helper

from graphopt.examples.models import IR_VERSION, OPSET
from tests.conftest import compile_run_check
from tests.kernels.test_schedules import _conv, conv_gemm_blocks

AVX2 = {"kind": "llvm", "mcpu": "haswell"}
AVX512 = {"kind": "llvm", "mcpu": "skylake-avx512"}


def pointwise_zoo(seed: int = 0) -> onnx.ModelProto:
    """A 1x1 convolution on 14x14 (196 positions) to 64 channels, a 3x3 one on the same map, and a 1x1 one
    after a 2x upsampling to 28x28 (784 positions)."""
    rng = np.random.default_rng(seed)
    nodes, inits = [], []
    for args in (("p196", "x", 32, 64, 1), ("w196", "r196", 64, 64, 3), ("p784", "up", 64, 32, 1)):
        node, params = _conv(rng, *args)
        nodes.append(node)
        inits += params
        if args[0] == "p196":
            nodes.append(helper.make_node("Relu", ["p196"], ["r196"]))
        if args[0] == "w196":
            scales = onnx.numpy_helper.from_array(np.array([1, 1, 2, 2], np.float32), "scales")
            inits.append(scales)
            nodes.append(helper.make_node("Resize", ["w196", "", "scales"], ["up"], mode="nearest"))
    graph = helper.make_graph(nodes, "pointwise_zoo",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 32, 14, 14])],
                              [helper.make_tensor_value_info("p784", TensorProto.FLOAT, [1, 32, 28, 28])], inits)
    return helper.make_model(graph, ir_version=IR_VERSION, opset_imports=[helper.make_opsetid("", OPSET)])


def _direct_tiles(target: tvm.target.Target) -> dict[tuple[int, int, int], tuple | None]:
    """{(positions, channels, reduction): (rows, vectors) of the default direct tile, or None} of pointwise_zoo's
    convolutions."""
    from graphopt.kernels.schedules.gemm_match import I_, J_, K_, direct_tile, extent_of

    tiles = {}
    for _, block, traits in conv_gemm_blocks(pointwise_zoo()):
        tile = direct_tile(block, traits[3], traits[2], target)
        tiles[tuple(int(extent_of(traits[3], kind)) for kind in (I_, J_, K_))] = None if tile is None else (
            tile.rows, tile.vectors)
    return tiles


@pytest.mark.parametrize(("target", "expected"), [
    # AVX2: the windowed convolution alone is direct, 4 rows x 2 vectors of 8
    (AVX2, {(196, 64, 32): None, (196, 64, 576): (4, 2), (784, 32, 64): None}),
    # AVX-512: 7 x 2 vectors of 16 for the windowed one, and the 196-position 1x1 one is direct too (14 x 2)
    (AVX512, {(196, 64, 32): (14, 2), (196, 64, 576): (7, 2), (784, 32, 64): None}),
])
def test_direct_tiles_follow_the_register_file(target, expected):
    assert _direct_tiles(tvm.target.Target(target)) == expected


def test_contiguous_tile_follows_the_register_file():
    """AVX-512: 8 rows x 3 vectors for 128+ rows of U; 8 x 2 from 24, even where 2 vectors pad 169 positions to
    192 (13.6%); else the AVX2 rule with 24 accumulators: 4 vectors (1000 -> 1024), 1 vector of 24 rows past
    12.5% padding (49 -> 64). AVX2: 2 vectors of 8 (176, 4%), 6 rows."""
    from graphopt.kernels.schedules.gemm_match import Tile, choose_tile

    avx512, avx2 = tvm.target.Target(AVX512), tvm.target.Target(AVX2)
    assert choose_tile(avx512, 256, 3136) == Tile(8, 3, 16)
    assert choose_tile(avx512, 96, 169) == Tile(8, 2, 16)
    assert choose_tile(avx512, 96, 49) == Tile(24, 1, 16)
    assert choose_tile(avx512, 1, 1000) == Tile(1, 4, 16)
    assert choose_tile(avx2, 96, 169) == Tile(6, 2, 8)


def test_pointwise_zoo_matches_onnx_runtime(tmp_path):
    """On this host's register file (the AVX-512 path on an AVX-512 host), every tile above computes what ORT does."""
    compile_run_check(pointwise_zoo(), tmp_path)
