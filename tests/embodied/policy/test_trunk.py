"""The trunk's hand-written blocks compute what nn.TransformerEncoder(norm_first=True) computes,
with the same parameter names (checkpoints saved before the rewrite load unchanged)."""

import pytest
import torch
from torch import nn

from embodied.policy.config import preset
from embodied.policy.trunk import Trunk


@pytest.mark.parametrize("training", [True, False])
def test_trunk_matches_torch_transformer_encoder(training):
    cfg = preset("tiny", width=32, heads=4, depth=2)
    layer = nn.TransformerEncoderLayer(cfg.width, cfg.heads, cfg.mlp_ratio * cfg.width, dropout=0.0,
                                       activation="gelu", batch_first=True, norm_first=True)
    reference = nn.TransformerEncoder(layer, cfg.depth, norm=nn.LayerNorm(cfg.width), enable_nested_tensor=False)
    torch.manual_seed(0)
    for p in reference.parameters():
        nn.init.normal_(p, std=0.2)
    trunk = Trunk(cfg)
    trunk.encoder.load_state_dict(reference.state_dict(), strict=True)
    x = torch.randn(3, 11, cfg.width)
    ignore = torch.zeros(3, 11, dtype=torch.bool)
    ignore[1, 2:6] = True  # an absent camera's tokens
    reference.train(training)
    trunk.train(training)
    with torch.no_grad():
        expected = reference(x, src_key_padding_mask=ignore)
        got = trunk.encoder(x, ignore)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
    # the ignored keys matter: unmasking them changes the outputs
    with torch.no_grad():
        assert not torch.allclose(trunk.encoder(x, torch.zeros_like(ignore))[1], got[1], atol=1e-4)


def test_keeping_the_last_tokens_computes_exactly_their_outputs():
    torch.manual_seed(1)
    cfg = preset("tiny", width=32, heads=4, depth=2)
    trunk = Trunk(cfg).eval()
    parts = [torch.randn(2, n, cfg.width) for n in (3, 8, 1, 1, 4)]
    ignore = [None, torch.tensor([[False] * 4 + [True] * 4, [False] * 8]), None, None, None]
    with torch.no_grad():
        full = trunk(parts, ignore)
        kept = trunk(parts, ignore, keep_last=4)
    assert full.shape == (2, 17, cfg.width) and kept.shape == (2, 4, cfg.width)
    torch.testing.assert_close(kept, full[:, -4:], rtol=1e-5, atol=1e-5)


def test_packing_leaves_out_ignored_tokens_and_keeps_the_outputs():
    torch.manual_seed(2)
    cfg = preset("tiny", width=32, heads=4, depth=2)
    trunk = Trunk(cfg).train()
    parts = [torch.randn(3, n, cfg.width, requires_grad=True) for n in (5, 8, 1, 1, 4)]
    language = torch.tensor([[False] * 3 + [True] * 2, [False] * 2 + [True] * 3, [False] * 4 + [True]])
    # image slots of a pooled batch (True: absent): each sample has two of four cameras, 2 tokens each
    images = torch.tensor([[0, 0, 1, 1, 0, 0, 1, 1], [1, 1, 0, 0, 1, 1, 0, 0], [1, 1, 1, 1, 0, 0, 0, 0]]).bool()
    ignore = [language, images, None, None, None]
    seen = []
    trunk.encoder.register_forward_pre_hook(lambda _, args: seen.append(args[0].shape[1]))
    packed = trunk(parts, ignore, keep_last=4, pack=True)
    grads = torch.autograd.grad(packed.square().sum(), parts)
    full = trunk(parts, ignore, keep_last=4)
    expected = torch.autograd.grad(full.square().sum(), parts)
    assert seen == [4 + 4 + 1 + 1 + 4, 5 + 8 + 1 + 1 + 4]
    torch.testing.assert_close(packed, full, rtol=1e-5, atol=1e-5)
    for got, want in zip(grads, expected):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    # an ignored token gets no gradient either way; an attended one does
    assert grads[1][0, 2].abs().sum() == 0 and grads[1][0, 0].abs().sum() > 0
    with pytest.raises(ValueError, match="keep_last"):
        trunk(parts, ignore, pack=True)
