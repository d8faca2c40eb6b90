"""The image encoder's readouts: the pooled grid and learned keypoints (spatial softmax)."""

import pytest
import torch
from torch import nn

from embodied.policy.config import preset
from embodied.policy.encoders import ImageEncoder, map_coordinates, pool_weights


@pytest.mark.parametrize("size,grid", [(6, 4), (12, 5), (8, 2)])
def test_grid_weights_are_adaptive_average_pooling(size, grid):
    features = torch.randn(2, 3, size, size)
    pooled = (pool_weights(size, size, grid)[None] @ features.flatten(2).transpose(1, 2)).transpose(1, 2)
    torch.testing.assert_close(pooled, nn.AdaptiveAvgPool2d(grid)(features).flatten(2))


def test_keypoint_follows_the_feature_it_looks_for():
    """A keypoint whose logits read channel 0 sits on the cell where channel 0 is high, at
    that cell's centre, wherever the cell is; the token changes with the position."""
    torch.manual_seed(0)
    encoder = ImageEncoder(preset("tiny", image_keypoints=3), lang_dim=4)
    with torch.no_grad():
        encoder.keypoint_logits.weight.zero_()
        encoder.keypoint_logits.bias.zero_()
        encoder.keypoint_logits.weight[0, 0] = 50.0
    coordinates = map_coordinates(12, 12)
    for row, col in [(2, 9), (10, 1)]:
        features = torch.zeros(1, 16, 12, 12)
        features[0, 0, row, col] = 1.0
        with torch.no_grad():
            weights = encoder.readout_weights(features)
        assert weights.shape == (1, 3, 144)
        torch.testing.assert_close(weights.sum(-1), torch.ones(1, 3))
        where = weights[0, 0] @ coordinates
        torch.testing.assert_close(where, coordinates[row * 12 + col], atol=1e-3, rtol=0)
        assert where[0] == pytest.approx((col + 0.5) / 6 - 1, abs=1e-3)  # x runs along columns
        torch.testing.assert_close(weights[0, 1], torch.full((144,), 1 / 144))  # constant logits: the mean


def test_keypoint_tokens_see_where_a_cube_is():
    """Through the whole (untrained) encoder: moving a red square inside the image changes
    the keypoint tokens."""
    torch.manual_seed(0)
    encoder = ImageEncoder(preset("tiny", image_keypoints=4), lang_dim=4).eval()
    lang = torch.zeros(2, 4)
    images = torch.full((2, 96, 96, 3), 40, dtype=torch.uint8)
    images[0, 10:18, 10:18, 0] = 255
    images[1, 10:18, 26:34, 0] = 255
    with torch.no_grad():
        tokens = encoder(images, lang)
    assert tokens.shape == (2, 4, 32)
    assert (tokens[0] - tokens[1]).abs().max() > 1e-3


def test_keypoints_config():
    assert preset("small").image_tokens == 16  # 16 keypoints
    grid = preset("small", image_keypoints=0, grounding_weight=0, grounded_state=False, image_grid=3)
    assert grid.image_tokens == 9  # 3 x 3 grid
    assert preset("tiny").image_tokens == 4
    with pytest.raises(Exception, match="non-negative"):
        preset("small", image_keypoints=-1)
