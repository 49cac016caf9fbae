"""kernel_blocks: the blocks of a kernel, and none (not a crash) for an opaque one."""

from __future__ import annotations

from tvm.script import tirx as T

from graphopt.analysis.kernel_blocks import kernel_blocks


@T.prim_func(private=True, s_tir=True)
def _opaque(a: T.Buffer((4,), "float32"), b: T.Buffer((4,), "float32")):
    # the shape of TOPI's hand-written kernels (scatter_elements): one opaque block, no root
    with T.sblock("copy_generic"):
        T.reads()
        T.writes()
        for i in range(4):
            b[i] = a[i]


@T.prim_func(private=True, s_tir=True)
def _copy(a: T.Buffer((4,), "float32"), b: T.Buffer((4,), "float32")):
    for i in range(4):
        with T.sblock("b"):
            vi = T.axis.spatial(4, i)
            b[vi] = a[vi]


def test_blocks_of_an_ordinary_kernel():
    assert [block.name_hint for block in kernel_blocks(_copy)] == ["b"]


def test_an_opaque_kernel_has_no_blocks_to_read():
    assert kernel_blocks(_opaque) == []
