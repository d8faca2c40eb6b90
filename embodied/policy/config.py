"""PolicyConfig and its named presets (no torch here).

    >>> from embodied.policy.config import preset
    >>> cfg = preset("small", chunk=8)

Presets:
    tiny   tests: trains in seconds on CPU
    small  default: CPU-trainable (a few million parameters, a few ms per chunk on 2 cores)
    base   GPU training

`small` and `base` read each camera through keypoints on a 12 x 12 feature map, train the
grounding loss (keypoints 0 and 1 onto the named target and goal) and hand those two
keypoints to the robot adapters' state stems (grounded_state): without the loss no vision
policy of this project found the named object beyond chance on new scenes, and the grounded
state more than doubled so100/lift success from 50 demonstrations (README, "Policy").
Datasets without role-pixel labels (teleoperation, LeRobot imports) simply add no grounding
term.
"""

from __future__ import annotations

import difflib
from dataclasses import asdict, dataclass, fields, replace
from typing import Any, Mapping

from embodied.errors import ConfigError

HEADS = ("l1", "flow")
BACKBONES = ("none", "efficientnet_lite0")
BACKBONE_STRIDES = (4, 8, 16, 32)


@dataclass(frozen=True)
class PolicyConfig:
    """Architecture of a VLAPolicy.

    Args:
        name: preset this config derives from.
        chunk: action chunk length H [control steps].
        width: token width d of the trunk.
        depth: transformer layers of the trunk.
        heads: attention heads (divides width).
        mlp_ratio: hidden width of the trunk MLPs, as a multiple of width.
        dropout: dropout of the trunk.
        image_backbone: "none": the FiLM conv layers read the pixels (a stem trained from
            scratch). "efficientnet_lite0": they read the feature map of a frozen ImageNet
            EfficientNet-Lite0 cut at `backbone_stride` (`embodied.policy.backbones`), which
            training computes once per frame.
        backbone_stride: output stride of the backbone's feature map: 4 (24 channels), 8 (40),
            16 (112) or 32 (320).
        image_channels: channels of the FiLM conv layers, one 3x3 block per entry: stride 2
            on pixels, stride 1 on backbone features.
        image_grid: the stem's feature map is pooled to image_grid x image_grid tokens per camera
            (when image_keypoints is 0).
        image_keypoints: K > 0: each camera gives K keypoint tokens instead of the pooled grid,
            each a learned spatial softmax over the stem's feature map carrying its expected
            position and the features there (`embodied.policy.encoders.ImageEncoder`). 0: the
            pooled grid (checkpoints saved before this field existed).
        robot_tokens: learned tokens per robot adapter.
        state_tokens: tokens the state stem makes from the proprioception.
        language_tokens: token-level language: the trunk reads the instruction as this many
            MiniLM token embeddings (the encoder's last hidden states, padded or truncated to
            this length, padding masked out of attention), so attention can read word order.
            0: one token from the pooled sentence embedding (the behaviour of checkpoints
            saved before this field existed).
        film_queries: FiLM (the image stem's language conditioning) reads, besides the pooled
            sentence embedding, the language tokens through this many learned attention
            queries, so it can single out the words that name an object (the sentence
            embedding is the mean of the tokens: "push the red cube to the blue zone" and its
            colour-swapped twin have cosine 0.99). 0: the sentence embedding alone
            (checkpoints saved before this field existed). Needs language_tokens > 0.
        language_dropout: training only: each real language token but the first ([CLS]) is left
            out of the trunk's attention with this probability, sample by sample, so the action
            pathway cannot lean on the exact words of the training phrasings (held-out
            phrasings change them). FiLM still reads every token (it singles out the object's
            name). 0: off. Needs language_tokens > 0.
        grounding_weight: w > 0: the first keypoints learn where the instruction's objects
            are. Keypoint 0 is pulled toward the named target's image position and keypoint 1
            toward the goal's, in every camera whose training frames carry those labels
            (`Episode.role_pixels`, which simulated demonstrations record): an L1 loss on the
            normalized image coordinates, times w, added to the action loss. The image side
            then has to match the instruction's words to an object, the step every policy
            without it skipped by memorising its demonstration scenes (README, the oracle).
            0: no such loss. Needs image_keypoints >= 2.
        grounded_state: each robot adapter's state stem also reads where keypoints 0 and 1 (the
            grounded target and goal) are in each of its cameras, next to the proprioception,
            so the action pathway sees the named objects' image positions as directly as the
            privileged-state oracle sees their poses (README). Needs grounding_weight > 0.
        relative_actions: the head predicts each chunk's joint targets relative to the joint
            positions the chunk starts from (openpi's delta actions; the gripper command stays
            absolute), normalized with the statistics of such chunks; `act` and the exported
            runtime add the observed positions back. False: absolute joint targets.
        head: "l1" (regression) or "flow" (rectified flow matching).
        flow_width, flow_depth: width and residual blocks of the flow head's velocity network.
        flow_steps: Euler steps from noise to actions at inference.
    """

    name: str = "custom"
    chunk: int = 16
    width: int = 256
    depth: int = 4
    heads: int = 4
    mlp_ratio: int = 4
    dropout: float = 0.0
    image_backbone: str = "none"
    backbone_stride: int = 8
    image_channels: tuple[int, ...] = (32, 48, 64, 96)
    image_grid: int = 4
    image_keypoints: int = 0
    robot_tokens: int = 2
    state_tokens: int = 2
    language_tokens: int = 0
    film_queries: int = 0
    language_dropout: float = 0.0
    grounding_weight: float = 0.0
    grounded_state: bool = False
    relative_actions: bool = False
    head: str = "l1"
    flow_width: int = 128
    flow_depth: int = 2
    flow_steps: int = 10

    def __post_init__(self):
        object.__setattr__(self, "image_channels", tuple(self.image_channels))
        positive = ("chunk", "width", "depth", "heads", "mlp_ratio", "image_grid", "robot_tokens", "state_tokens",
                    "flow_width", "flow_depth", "flow_steps")
        bad = {k: getattr(self, k) for k in positive
               if isinstance(getattr(self, k), bool) or not isinstance(getattr(self, k), int) or getattr(self, k) < 1}
        if bad:
            raise ConfigError(f"policy config {self.name!r}: {bad} must be positive integers")
        counts = {k: getattr(self, k) for k in ("language_tokens", "film_queries", "image_keypoints")}
        bad = {k: v for k, v in counts.items() if isinstance(v, bool) or not isinstance(v, int) or v < 0}
        if bad:
            raise ConfigError(f"policy config {self.name!r}: {bad} must be non-negative integers (0: the "
                              "behaviour before the field existed)")
        if self.film_queries and not self.language_tokens:
            raise ConfigError(f"policy config {self.name!r}: film_queries={self.film_queries} attends over language "
                              "tokens; set language_tokens > 0 or film_queries=0")
        if isinstance(self.grounding_weight, bool) or not (isinstance(self.grounding_weight, (int, float))
                                                          and self.grounding_weight >= 0):
            raise ConfigError(f"policy config {self.name!r}: grounding_weight must be a number >= 0, found "
                              f"{self.grounding_weight!r}")
        if self.grounding_weight and self.image_keypoints < 2:
            raise ConfigError(f"policy config {self.name!r}: grounding_weight={self.grounding_weight} supervises "
                              "keypoints 0 and 1 (target and goal); set image_keypoints >= 2 or grounding_weight=0")
        if self.grounded_state and not self.grounding_weight:
            raise ConfigError(f"policy config {self.name!r}: grounded_state reads the grounded keypoints 0 and 1; "
                              "set grounding_weight > 0 (and image_keypoints >= 2) or grounded_state=false")
        if self.width % self.heads:
            raise ConfigError(f"policy config {self.name!r}: width {self.width} is not divisible by heads {self.heads}")
        if not self.image_channels or not all(isinstance(c, int) and c > 0 for c in self.image_channels):
            raise ConfigError(f"policy config {self.name!r}: image_channels must be positive integers, "
                              f"found {self.image_channels}")
        for key in ("dropout", "language_dropout"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value < 1.0:
                raise ConfigError(f"policy config {self.name!r}: {key} must lie in [0, 1), found {value!r}")
        if self.language_dropout and not self.language_tokens:
            raise ConfigError(f"policy config {self.name!r}: language_dropout={self.language_dropout} drops language "
                              "tokens; set language_tokens > 0 or language_dropout=0")
        if self.image_backbone not in BACKBONES:
            raise ConfigError(f"policy config {self.name!r}: unknown image_backbone {self.image_backbone!r}; use one "
                              f"of {BACKBONES}")
        if self.backbone_stride not in BACKBONE_STRIDES:
            raise ConfigError(f"policy config {self.name!r}: backbone_stride must be one of {BACKBONE_STRIDES}, found "
                              f"{self.backbone_stride}")
        if self.head not in HEADS:
            raise ConfigError(f"policy config {self.name!r}: unknown head {self.head!r}; use one of {HEADS}")

    @property
    def image_tokens(self) -> int:
        """Tokens per camera: the keypoints, or the pooled grid's cells."""
        return self.image_keypoints or self.image_grid**2

    @property
    def head_width(self) -> int:
        """Width of the features the robot's action layers read."""
        return self.flow_width if self.head == "flow" else self.width

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "PolicyConfig":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ConfigError(f"policy config has unknown fields {unknown}; known fields: {sorted(known)}")
        return cls(**d)


_SMALL = PolicyConfig(name="small", width=192, image_channels=(16, 32, 64), image_keypoints=16, language_tokens=16,
                      film_queries=2, grounding_weight=1.0, grounded_state=True)
PRESETS: tuple[PolicyConfig, ...] = (
    PolicyConfig(name="tiny", chunk=4, width=32, depth=1, heads=2, mlp_ratio=2, image_channels=(8, 16, 16),
                 image_grid=2, robot_tokens=1, state_tokens=1, language_tokens=8, film_queries=1, flow_width=32,
                 flow_depth=1, flow_steps=4),
    _SMALL,
    # small's FiLM layers over a frozen ImageNet EfficientNet-Lite0 (its 24-channel map at stride 4)
    # instead of a stem trained from the pixels: the pooled 4 arms x 3 tasks run at 8000 steps
    # succeeded in 598/1200 episodes over two seeds, against 487/1200 cut at stride 8 and 404/1200 on
    # the pixels (docs/policy_experiments.md, "The backbone at stride 4"). Not the default: on the
    # robot its int8 graph misses the deployment targets `small` is held to (5.0 ms per chunk and
    # 2.3x torch eager, against <= 5 ms and >= 3x; README, "On the robot's computer").
    replace(_SMALL, name="small_pretrained", image_backbone="efficientnet_lite0", backbone_stride=4,
            image_channels=(64, 96)),
    PolicyConfig(name="base", width=512, depth=8, heads=8, dropout=0.1, image_channels=(48, 96, 128),
                 image_keypoints=32, robot_tokens=4, state_tokens=4, language_tokens=16, film_queries=4,
                 grounding_weight=1.0, grounded_state=True, flow_width=256, flow_depth=3),
)
DEFAULT_PRESET = "small"

_BY_NAME = {p.name: p for p in PRESETS}
if len(_BY_NAME) != len(PRESETS):
    raise ConfigError(f"duplicate policy preset names in {[p.name for p in PRESETS]}")


def available() -> list[str]:
    """Names of the presets."""
    return list(_BY_NAME)


def preset(name: str = DEFAULT_PRESET, **overrides: Any) -> PolicyConfig:
    """The preset `name`, with fields replaced by `overrides` (validated again)."""
    if name not in _BY_NAME:
        close = difflib.get_close_matches(str(name), _BY_NAME, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ConfigError(f"unknown policy preset {name!r}{hint} Presets: {available()}")
    unknown = sorted(set(overrides) - {f.name for f in fields(PolicyConfig)})
    if unknown:
        raise ConfigError(f"unknown policy config fields {unknown}; known: {[f.name for f in fields(PolicyConfig)]}")
    return replace(_BY_NAME[name], **overrides)
