"""The frozen pretrained image backbone: EfficientNet-Lite0 from the package's state dict."""

import numpy as np
import pytest
import torch
from matplotlib import cbook
from matplotlib import image as mpimage

from embodied.errors import ConfigError
from embodied.policy.backbones import EfficientNetLite, _efficientnet_lite0_state, build_backbone
from embodied.policy.config import preset

MILITARY_UNIFORM = 652  # ImageNet class index


def test_efficientnet_lite0_recognises_a_photograph():
    """The architecture read off the state dict, with TF "SAME" padding and the lite input
    scaling, is the trained network: matplotlib's sample photograph of Grace Hopper in
    uniform is a military uniform (the classic ImageNet example)."""
    photo = np.asarray(mpimage.imread(cbook.get_sample_data("grace_hopper.jpg")))
    pixels = torch.from_numpy(photo.copy()).permute(2, 0, 1)[None].float()
    pixels = torch.nn.functional.interpolate(pixels, size=(224, 224), mode="bilinear", antialias=True)
    net = EfficientNetLite(_efficientnet_lite0_state()).eval()
    with torch.no_grad():
        probabilities = net.classify(pixels).softmax(-1)[0]
    assert int(probabilities.argmax()) == MILITARY_UNIFORM
    assert probabilities[MILITARY_UNIFORM] > 0.2


@pytest.mark.parametrize("stride,channels", [(4, 24), (8, 40), (16, 112), (32, 320)])
def test_backbone_is_cut_at_its_output_stride(stride, channels):
    backbone = build_backbone("efficientnet_lite0", stride)
    assert backbone.channels == channels and backbone.stride == stride
    full = EfficientNetLite(_efficientnet_lite0_state()).eval()
    pixels = torch.randint(0, 256, (2, 3, 96, 96), dtype=torch.uint8)
    with torch.no_grad():
        features = backbone(pixels)
        reference = torch.nn.functional.relu6(full._bn0(full._conv_stem((pixels.float() - 127) / 128)))
        for block in full._blocks[:len(backbone._blocks)]:
            reference = block(reference)
    assert features.shape == (2, channels, 96 // stride, 96 // stride)
    torch.testing.assert_close(features, reference)


def test_backbone_config_errors():
    with pytest.raises(ConfigError, match="unknown image_backbone 'resnet'"):
        preset("tiny", image_backbone="resnet")
    with pytest.raises(ConfigError, match=r"backbone_stride must be one of \(4, 8, 16, 32\)"):
        preset("tiny", image_backbone="efficientnet_lite0", backbone_stride=2)


def test_backbone_stays_frozen_while_the_film_layers_train(make_policy, make_batch):
    policy = make_policy(image_backbone="efficientnet_lite0", image_channels=(16,))
    backbone = policy.image.backbone
    assert not any(p.requires_grad for p in backbone.parameters())
    before = {k: v.clone() for k, v in backbone.state_dict().items()}
    film = policy.image.blocks[0].conv.weight.detach().clone()
    policy.train()
    assert not backbone.training  # BatchNorm keeps its ImageNet statistics
    opt = torch.optim.AdamW([p for p in policy.parameters() if p.requires_grad], lr=1e-2)
    for _ in range(2):
        opt.zero_grad()
        policy(make_batch(size=32))["loss"].backward()
        opt.step()
    for k, v in backbone.state_dict().items():
        torch.testing.assert_close(v, before[k], rtol=0, atol=0)
    assert not torch.equal(policy.image.blocks[0].conv.weight, film)


def test_cached_features_stand_in_for_the_images(make_policy, make_batch):
    """A batch carrying the backbone's features (as training caches them, float16) gives the
    loss the images give; features that disagree with the images win (they are read, the
    images are not)."""
    policy = make_policy(image_backbone="efficientnet_lite0", image_channels=(16,)).eval()
    batch = make_batch(size=32)
    b, k = batch["camera_mask"].shape
    with torch.no_grad():
        features = policy.image.features(batch["images"].flatten(0, 1)).unflatten(0, (b, k))
        plain = policy(batch)["loss"]
        cached = policy({**batch, "image_features": features.half()})["loss"]
        other = policy({**batch, "image_features": features.flip(0).half()})["loss"]
    assert features.shape[2:] == (40, 4, 4)
    torch.testing.assert_close(cached, plain, rtol=1e-2, atol=1e-3)
    assert abs(float(other - plain)) > 1e-4
