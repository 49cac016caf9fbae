"""benchmarks.tile_sweep: the candidates it times and how it scores the rules' AVX-512 choices against a sweep."""

from __future__ import annotations

from benchmarks.tile_sweep import avx512_choice, candidates, evaluate


def _row(windowed: bool, positions: int, channels: int, out_i: bool, ms: dict, calls: int = 1) -> dict:
    return {"model": "m", "kernel": "k", "calls": calls, "windowed": windowed, "I": positions, "J": channels,
            "K": 64, "out_i": out_i, "ms": ms}


def test_candidates_by_kind():
    windowed = candidates(196, 64, True, True)
    assert set(windowed) == {"w14x2", "w7x2", "w4x2"}  # the two-vector rows that divide 196
    assert all(k["pad_copy"] and k["swap_axes"] and k["pack_u"] is False for k in windowed.values())
    pointwise = candidates(196, 64, True, False)
    assert {"c8x3", "c8x2", "d14x2", "d7x2", "d4x2"} <= set(pointwise)
    assert not any(label.startswith("d") for label in candidates(196, 24, True, False))  # channels not whole vectors
    assert candidates(49, 32, False, True) == {}  # output contiguous in channels: no direct form


def test_avx512_choice_follows_the_rules():
    assert avx512_choice(_row(True, 196, 64, True, {})) == "w7x2"
    assert avx512_choice(_row(True, 729, 192, True, {})) == "w9x2"
    assert avx512_choice(_row(False, 196, 256, True, {})) == "d14x2"
    assert avx512_choice(_row(False, 3136, 256, True, {})) == "c8x3"
    assert avx512_choice(_row(False, 169, 96, True, {})) == "c8x2"
    assert avx512_choice(_row(False, 6400, 18, True, {})) == "default"  # too few channels for 8-row tiles


def test_evaluate_weights_by_calls_and_compares_with_the_best():
    rows = [_row(False, 3136, 256, True, {"default": 2.0, "c8x3": 1.0, "c8x2": 0.5}, calls=2),
            _row(False, 6400, 18, True, {"default": 1.0, "c8x2": 2.0})]
    table = evaluate(rows)
    # default 2*2 + 1 = 5 ms; chosen c8x3 2*1 + default 1 = 3 ms; best 2*0.5 + 1 = 2 ms
    assert "| all | 1x1/matmul | 5.00 | 0.600 | 0.400 |" in table, table
