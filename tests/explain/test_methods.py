"""The pieces on their own, with inputs whose answers are known."""

from __future__ import annotations

import numpy as np
import pytest

from graphopt.errors import InputError
from graphopt.explain.fidelity import deletion_check, pearson
from graphopt.explain.lime import kernel_weights, lime_map, weighted_ridge
from graphopt.explain.occlusion import occlusion_map, window_starts
from graphopt.explain.perturb import mean_baseline
from graphopt.explain.predictors import _in_batches
from graphopt.explain.rise import rise_map, rise_masks
from graphopt.explain.scores import check_target, class_scores, is_probability, target_score
from graphopt.explain.segments import slic


def _box_image() -> np.ndarray:
    image = np.zeros((1, 24, 32), dtype=np.float32)
    image[0, 8:16, 20:28] = 1.0
    return image


def _box_scorer(images: np.ndarray) -> np.ndarray:
    """A "model" whose score is the brightness of the box region only."""
    return images[:, 0, 8:16, 20:28].mean(axis=(1, 2))


@pytest.mark.parametrize("method", ["occlusion", "rise", "lime"])
def test_each_method_finds_the_only_region_that_matters(method):
    image = _box_image()
    baseline = mean_baseline(image)
    rng = np.random.default_rng(0)
    if method == "occlusion":
        saliency = occlusion_map(_box_scorer, image, baseline, patch=4)
    elif method == "rise":
        saliency = rise_map(_box_scorer, image, baseline, patch=4, samples=300, rng=rng)
    else:
        saliency = lime_map(_box_scorer, image, baseline, patch=4, samples=200, rng=rng)
    inside = saliency[8:16, 20:28].mean()
    outside = np.delete(saliency.ravel(), np.ravel_multi_index(np.mgrid[8:16, 20:28].reshape(2, -1), (24, 32)))
    assert inside > 5 * np.abs(outside).mean()
    check = deletion_check(_box_scorer, image, baseline, saliency, seed=0)
    assert check.deletion_auc < check.random_deletion_auc


def test_window_starts_cover_the_edge():
    assert window_starts(48, 8, 4) == list(range(0, 41, 4))
    assert window_starts(10, 4, 4) == [0, 4, 6]
    assert window_starts(3, 8, 4) == [0]


def test_rise_masks_follow_the_seed_only():
    a = rise_masks(48, 192, 5, 8, np.random.default_rng(7))
    b = rise_masks(48, 192, 5, 8, np.random.default_rng(7))
    c = rise_masks(48, 192, 5, 8, np.random.default_rng(8))
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    assert a.min() >= 0 and a.max() <= 1 and 0.2 < a.mean() < 0.8


def test_slic_segments_tile_the_image_and_follow_an_edge():
    image = np.zeros((3, 32, 64), dtype=np.float32)
    image[:, :, 30:] = 1.0  # a vertical edge off the 8 px grid
    labels = slic(image, 8)
    assert labels.shape == (32, 64) and labels.min() == 0
    assert set(np.unique(labels)) == set(range(labels.max() + 1))
    assert 16 <= labels.max() + 1 <= 40
    for segment in range(labels.max() + 1):  # no segment straddles the edge
        colours = image[0][labels == segment]
        assert colours.min() == colours.max()


def test_weighted_ridge_recovers_known_coefficients():
    rng = np.random.default_rng(0)
    features = rng.integers(0, 2, (400, 6)).astype(float)
    truth = np.array([3.0, -1.0, 0.0, 2.0, 0.5, -2.5])
    targets = 4.0 + features @ truth
    weights = rng.uniform(0.1, 1.0, 400)
    assert np.allclose(weighted_ridge(features, targets, weights, alpha=1e-9), truth, atol=1e-6)


def test_kernel_weights_favour_samples_near_the_input():
    weights = kernel_weights(np.array([[1, 1, 1, 1], [1, 1, 1, 0], [1, 0, 0, 0], [0, 0, 0, 0]], dtype=float))
    assert weights[0] == pytest.approx(1.0)
    assert weights[0] > weights[1] > weights[2] >= weights[3]


def test_log_odds_keep_precision_near_certainty():
    scores = np.array([[1 - 8e-7, 8e-7], [1 - 8e-6, 8e-6]], dtype=np.float32).astype(np.float64)
    assert is_probability(scores)
    odds = target_score(scores, 0, "log_odds")
    assert odds[0] - odds[1] == pytest.approx(np.log(10), rel=1e-3)
    assert not is_probability(np.array([[2.0, -1.0]]))


def test_class_scores_reduce_sequences_and_maps():
    assert class_scores(np.ones((2, 7, 5))).shape == (2, 5)  # (N, T, C): mean over time
    assert class_scores(np.ones((2, 1, 4, 4))).shape == (2, 1)  # (N, C, H, W): mean over space


def test_target_out_of_range_is_an_input_error():
    check_target(1, 2)
    for bad in (2, -1):
        with pytest.raises(InputError, match="out of range"):
            check_target(bad, 2)


def test_fixed_batch_pads_the_last_call_and_drops_the_padding():
    calls = []

    def fixed_batch_of_4(chunk):
        calls.append(len(chunk))
        assert len(chunk) == 4
        return chunk.reshape(4, -1)[:, :2]

    images = np.arange(5 * 2, dtype=np.float32).reshape(5, 2, 1, 1)
    scores = _in_batches(fixed_batch_of_4, images, 4)
    assert calls == [4, 4] and scores.shape == (5, 2)
    assert np.array_equal(scores, images.reshape(5, 2))


def test_pearson_is_none_for_a_flat_map():
    assert pearson(np.ones((4, 4)), np.arange(16.0).reshape(4, 4)) is None
    assert pearson(np.arange(16.0), 2 * np.arange(16.0) + 1) == pytest.approx(1.0)
