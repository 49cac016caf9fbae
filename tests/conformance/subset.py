"""The fixed conformance subset `make test` runs, and how its outcomes are judged.

The cases cover the op families graphopt compiles (elementwise, matmul/conv,
pooling, normalization, reductions, shape and indexing ops, casts), a few
models (an old-IR PyTorch export, a simple multi-node model), scalars and
zero-size tensors, and expected refusals (ops TVM's importer lacks, sequences,
strings), so a regression anywhere in the compile shows up in ~1 minute.

Judging, for each case (`judge`):
- a mismatch, crash or timeout fails, whatever the expectation says;
- an expected pass that no longer passes fails;
- an expected refusal that now refuses with another error class fails (review it);
- an expected refusal that now passes is progress: reported, not a failure.

After a fix changes outcomes, regenerate the expectation with one command:

    python -m benchmarks.conformance --subset --write-expected
"""

from __future__ import annotations

from pathlib import Path

EXPECTED = Path(__file__).with_name("subset_expected.tsv")
BUGS = ("mismatch", "crash", "timeout")

SUBSET: tuple[str, ...] = (
    # elementwise and activations; pow_bcast_scalar takes a 0-d input
    "test_abs_cpu", "test_add_bcast_cpu", "test_pow_bcast_scalar_cpu", "test_where_example_cpu",
    "test_relu_cpu", "test_sigmoid_cpu", "test_erf_cpu", "test_dropout_default_cpu",
    # matmul and convolution; Conv2d_groups is a PyTorch export with IR version 3, opset 6
    "test_matmul_4d_cpu", "test_conv_with_strides_padding_cpu", "test_convtranspose_1d_cpu",
    "test_Conv2d_groups_cpu", "test_operator_conv_cpu",
    # pooling; AvgPool2d is IR version 3 too
    "test_maxpool_2d_pads_cpu", "test_averagepool_2d_strides_cpu", "test_globalaveragepool_cpu",
    "test_AvgPool2d_cpu",
    # normalization, one as its expanded ONNX function
    "test_batchnorm_epsilon_cpu", "test_instancenorm_example_cpu", "test_layer_normalization_2d_axis0_expanded_cpu",
    # reductions, two over zero-size inputs (folded as the constants they are)
    "test_reduce_sum_keepdims_example_cpu", "test_reduce_mean_default_axes_keepdims_example_cpu",
    "test_reduce_sum_empty_set_cpu", "test_reduce_max_empty_set_cpu",
    "test_softmax_axis_1_cpu", "test_logsoftmax_default_axis_cpu", "test_softmax_axis_1_expanded_cpu",
    # shape ops; split_zero_size_splits has zero-size outputs, size a 0-d output
    "test_reshape_negative_dim_cpu", "test_transpose_all_permutations_0_cpu", "test_concat_2d_axis_1_cpu",
    "test_split_zero_size_splits_opset18_cpu", "test_flatten_axis0_cpu", "test_size_cpu",
    "test_expand_shape_model1_cpu",
    # indexing, sorting, data-dependent sizes, resampling
    "test_gather_0_cpu", "test_gather_elements_0_cpu", "test_gathernd_example_int32_cpu",
    "test_scatter_elements_with_axis_cpu", "test_top_k_cpu", "test_argmax_default_axis_example_cpu",
    "test_nonzero_example_cpu", "test_resize_upsample_scales_nearest_cpu",
    # recurrent layers
    "test_lstm_defaults_cpu", "test_gru_defaults_cpu",
    # small models: a PyTorch operator export (opset 6), a simple model
    "test_operator_add_broadcast_cpu", "test_single_relu_model_cpu",
    # opset 28 models lowered to ONNX Runtime's 26 (BitShift's width rule from graphopt's converter, a
    # signed BitShift rewritten into opset-26 ops, a Cast), an empty input a reduction reads as its axes,
    # an integer Pow (a fallback kernel)
    "test_bitshift_right_uint16_cpu", "test_bitshift_left_int8_cpu", "test_cast_FLOAT_to_FLOAT16_cpu",
    "test_mod_mixed_sign_int32_cpu", "test_reduce_sum_empty_axes_input_noop_cpu", "test_pow_types_int32_int32_cpu",
    # narrow types held widened (graphopt.frontend.narrow_types): float8 rounding, a float4 CastLike as its
    # function, a float8 quantization whose zero point is a graph input (checked by the runtime), int4
    # dequantization; refused: a cast onto int4 (ORT and ONNX's reference disagree), a non-saturating e5m2 cast
    "test_cast_FLOAT_to_FLOAT8E4M3FN_cpu", "test_castlike_FLOAT_to_FLOAT4E2M1_expanded_cpu",
    "test_quantizelinear_e4m3fn_cpu", "test_dequantizelinear_int4_cpu", "test_cast_FLOAT_to_INT4_cpu",
    "test_cast_no_saturate_FLOAT_to_FLOAT8E5M2_cpu",
    # expected refusals: data-dependent sizes (one zero-size, one 0-d), sequences, training ops,
    # string tensors, a random training Dropout, a shape TVM's importer loses (bfloat16 attention)
    "test_slice_cpu", "test_slice_start_out_of_bounds_cpu", "test_triu_zero_cpu",
    "test_sequence_insert_at_back_cpu", "test_adagrad_cpu", "test_ai_onnx_ml_label_encoder_string_int_cpu",
    "test_regex_full_match_basic_cpu", "test_training_dropout_cpu",
    "test_attention_4d_attn_mask_causal_bf16_expanded_cpu",
)


def select_subset(names: list[str]) -> list[str]:
    """The subset, checked against the suite's case names (a renamed case is an error, not a skip)."""
    unknown = sorted(set(SUBSET) - set(names))
    if unknown:
        raise ValueError(f"subset cases not in the suite: {', '.join(unknown)}")
    return list(SUBSET)


def read_expected(path: Path = EXPECTED) -> dict[str, tuple[str, str]]:
    """case -> (outcome, error class) from the expected-outcome file."""
    expected = {}
    for line in path.read_text().splitlines()[1:]:
        case, outcome, error_class = line.split("\t")
        expected[case] = (outcome, error_class)
    return expected


def write_expected(records, path: Path = EXPECTED) -> Path:
    """Records the subset's graphopt outcomes as the new expectation; refuses to record a bug."""
    rows = []
    for record in sorted(records, key=lambda r: r.case):
        result = record.results["graphopt"]
        if result.outcome in BUGS:
            raise ValueError(f"{record.case}: {result.outcome} ({result.first_line}) is a bug, not an expectation")
        rows.append(f"{record.case}\t{result.outcome}\t{result.error_class}\n")
    path.write_text("case\toutcome\terror_class\n" + "".join(rows))
    return path


def judge(records, expected: dict[str, tuple[str, str]]) -> tuple[list[str], list[str]]:
    """(problems that fail the subset, notes on progress) for the graphopt results in `records`."""
    problems, notes = [], []
    seen = {record.case for record in records}
    problems += [f"{case}: expected but not run" for case in sorted(set(expected) - seen)]
    for record in sorted(records, key=lambda r: r.case):
        result = record.results["graphopt"]
        want, want_class = expected.get(record.case, ("", ""))
        got = f"{result.outcome} {result.error_class} at {result.stage}: {result.first_line}".strip()
        if result.outcome in BUGS:
            problems.append(f"{record.case}: {got} (frame {result.frame or '-'})")
        elif not want:
            problems.append(f"{record.case}: no expected outcome recorded (got {got})")
        elif want == "pass" and result.outcome != "pass":
            problems.append(f"{record.case}: expected pass, got {got}")
        elif want == "refused" and result.outcome == "refused" and result.error_class != want_class:
            problems.append(f"{record.case}: expected refusal {want_class}, got {got}")
        elif want == "refused" and result.outcome == "pass":
            notes.append(f"{record.case}: expected refusal {want_class}, now passes: regenerate the expectation")
        elif want != result.outcome:
            problems.append(f"{record.case}: expected {want} {want_class}, got {got}")
    return problems, notes
