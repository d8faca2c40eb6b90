"""VLAPolicy: images + instruction + proprioception -> an action chunk, for many robots.

    instruction ─> MiniLM (frozen) ─┬─> FiLM vector ───FiLM──> image conv layers (on pixels, or on a
                                    │       frozen backbone's features) ─> image tokens (+ camera embedding)
                                    └─> language tokens via lang_proj: the L token embeddings,
                                        padding masked (config.language_tokens = L > 0), or the
                                        sentence embedding as one token (language_tokens = 0)
    The FiLM vector is the sentence embedding, followed by the token embeddings pooled by
    learned attention queries when config.film_queries > 0. The conv layers' feature map
    becomes tokens by average pooling to a grid, or by learned keypoints (config.image_keypoints).
    A robot whose adapter has its own `ImageLayers` (a new arm's finetune) reads its images
    through its own convs, norms and keypoint logits, with the shared FiLM and projections;
    one whose adapter has a `LowRankUpdate` of the trunk runs the trunk with its updated weights.
    language tokens, image tokens, robot tokens, state tokens (adapter; with config.grounded_state
    its stem also reads keypoints 0 and 1 of each camera), action queries
        -> shared transformer trunk -> context at the action queries
        -> head (l1 or flow) with the robot adapter's action layers -> actions [B, H, m]
When training shifts the images at random (the batch's `image_shift`), the keypoint positions
the image tokens and the grounded state carry are those in the unshifted image: the
demonstrated actions do not move with the image.

Batches are those of `embodied.data.collate.Collate`, normalized by the loader
(`embodied.data.transforms.Normalize`), optionally with `image_features` float[B, K, C, h, w]
(the frozen backbone's features of `images`, cached per frame: `embodied.train.features`);
`act` normalizes a raw `Observation` itself with the statistics the policy keeps
(`Normalizer`) and returns actions in robot units.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np
import torch
from torch import nn

import robots
from embodied.errors import InvalidInput
from embodied.policy.adapters import GROUNDED_PER_CAMERA, Adapters, RobotAdapter, grounded_keypoints
from embodied.policy.config import PolicyConfig
from embodied.policy.encoders import ImageEncoder, ImageLayers, LanguageEncoder, TokenAttentionPool
from embodied.policy.heads import HEADS
from embodied.policy.io import ActionChunk, Observation, relative_to_state
from embodied.policy.lowrank import LowRankUpdate
from embodied.policy.normalizer import Normalizer
from embodied.policy.trunk import Trunk


def grounding_loss(keypoints: torch.Tensor, role_pixels: torch.Tensor) -> torch.Tensor:
    """Mean L1 distance between keypoints 0 and 1 of each image float32[N, K, 2] and where the
    target and goal are in it float32[N, 2, 2] (normalized image coordinates), over the labels
    that are known (not NaN); 0 when none is."""
    known = torch.isfinite(role_pixels).all(-1)  # [N, 2]
    error = (keypoints[:, :role_pixels.shape[1]] - role_pixels.nan_to_num()).abs().sum(-1)
    return (error * known).sum() / known.sum().clamp(min=1)


class VLAPolicy(nn.Module):
    """Args:
        config: architecture.
        language: the frozen sentence encoder (not part of the weights; its identity is
            recorded in checkpoints).
        normalizer: per-robot statistics used by `act` (and saved in checkpoints).
    """

    def __init__(self, config: PolicyConfig, language: LanguageEncoder, normalizer: Normalizer | None = None):
        super().__init__()
        self.config, self.language = config, language
        self.normalizer = normalizer if normalizer is not None else Normalizer()
        self.film_pool = TokenAttentionPool(config.film_queries, language.dim) if config.film_queries else None
        self.image = ImageEncoder(config, language.dim + (self.film_pool.out_dim if self.film_pool else 0))
        self.lang_proj = nn.Linear(language.dim, config.width)
        self.action_queries = nn.Parameter(torch.randn(config.chunk, config.width) * 0.02)
        self.adapters = Adapters(config)
        self.trunk = Trunk(config)
        self.head = HEADS[config.head](config)

    @classmethod
    def for_robots(cls, config: PolicyConfig, names: Sequence[str], language: LanguageEncoder,
                   normalizer: Normalizer | None = None) -> "VLAPolicy":
        """A policy with one adapter per robot, sized from its RobotSpec."""
        policy = cls(config, language, normalizer)
        for name in names:
            spec = robots.load(name)
            policy.add_robot(name, len(spec.state_names), spec.action_dim, [c.name for c in spec.cameras])
        return policy

    def add_robot(self, name: str, state_dim: int, action_dim: int, cameras: Sequence[str],
                  image_layers: bool = False, trunk_rank: int = 0) -> RobotAdapter:
        """Add (or replace) robot `name`'s adapter, on the policy's device; with `image_layers`,
        the adapter gets its own copy of the image encoder's current spatial layers, and with
        `trunk_rank` r > 0 its own rank-r update of the trunk's weight matrices (zero at first)."""
        device = self.action_queries.device
        own = ImageLayers(self.image) if image_layers else None
        update = LowRankUpdate(self.trunk, trunk_rank) if trunk_rank else None
        return self.adapters.add_robot(name, state_dim, action_dim, cameras, own, update).to(device)

    def adapter_only(self, robot: str) -> list[nn.Parameter]:
        """Freeze everything but `robot`'s adapter (adapter-only finetuning); returns its parameters."""
        return self.adapters.freeze_all_but(self, robot)

    # --- batch -> context -----------------------------------------------------------------
    def language_part(self, sentence: torch.Tensor, tokens: torch.Tensor | None = None,
                      token_mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The trunk's language tokens and their ignore mask (shared with the ONNX export).

        Args:
            sentence: float32[B, 384] pooled sentence embeddings.
            tokens, token_mask: float32[B, L, 384] token embeddings and bool[B, L] (True: a
                real token) when `config.language_tokens > 0`, else None.

        Returns:
            float32[B, L, d] with bool[B, L] (True: padding, ignored; in training also the
            tokens `config.language_dropout` leaves out) for token-level language;
            float32[B, 1, d] with None otherwise.
        """
        if tokens is None:
            return self.lang_proj(sentence)[:, None], None
        ignore = ~token_mask
        if self.training and self.config.language_dropout:
            dropped = torch.rand(ignore.shape, device=ignore.device) < self.config.language_dropout
            dropped[:, 0] = False  # [CLS]: every sample keeps a token
            ignore = ignore | dropped
        return self.lang_proj(tokens), ignore

    def film_part(self, sentence: torch.Tensor, tokens: torch.Tensor | None = None,
                  token_mask: torch.Tensor | None = None) -> torch.Tensor:
        """The vector FiLM reads (shared with the ONNX export; arguments as in `language_part`):
        the sentence embeddings, followed by the tokens pooled by attention when
        `config.film_queries = Q > 0`: float32[B, (1 + Q) 384]."""
        if self.film_pool is None:
            return sentence
        return torch.cat([sentence, self.film_pool(tokens, token_mask)], dim=-1)

    def _language(self, instructions: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """The FiLM vectors (`film_part`), and the trunk's language part and its ignore mask
        (`language_part`)."""
        device = self.action_queries.device
        sentence = torch.from_numpy(self.language(instructions)).to(device)
        if not self.config.language_tokens:
            return sentence, *self.language_part(sentence)
        tokens, mask = (torch.from_numpy(a).to(device) for a in self.language.tokens(instructions,
                                                                                     self.config.language_tokens))
        return self.film_part(sentence, tokens, mask), *self.language_part(sentence, tokens, mask)

    def _groups(self, batch: Mapping[str, Any]) -> dict[str, torch.Tensor]:
        """Robot name -> indices of its samples (validates dimensions and values)."""
        names, device = list(batch["robot"]), self.action_queries.device
        groups = {}
        for name in dict.fromkeys(names):
            adapter = self.adapters[name]
            if batch["state"].shape[1] < adapter.state_dim:
                raise InvalidInput(f"{name} has {adapter.state_dim} state dimensions, the batch only "
                                   f"{batch['state'].shape[1]}")
            groups[name] = torch.tensor([i for i, n in enumerate(names) if n == name], device=device)
        for key in ("state", "actions"):
            if key in batch and not torch.isfinite(batch[key]).all():
                raise InvalidInput(f"batch {key!r} holds NaN or infinite values; check the dataset and its statistics")
        return groups

    @staticmethod
    def _slot_cameras(batch: Mapping[str, Any], adapter: RobotAdapter, idx: torch.Tensor,
                      mask: torch.Tensor) -> torch.Tensor:
        """long[len(idx), K]: the adapter's index of the camera in each of the K slots of samples
        `idx` (-1: no camera there). Batches name their camera slots once (`camera_slots`, from
        Collate: one row for all samples) or per sample (`cameras`, positional)."""
        k = mask.shape[1]
        slots = batch.get("camera_slots")
        if slots:
            present = mask[idx].any(0).tolist()
            row = [adapter.camera_index(slots[j]) if present[j] else -1 for j in range(k)]
            return torch.tensor(row, device=mask.device).expand(len(idx), -1)
        rows = [[adapter.camera_index(c) for c in batch["cameras"][i]] for i in idx.tolist()]
        return torch.tensor([r + [-1] * (k - len(r)) for r in rows], dtype=torch.long, device=mask.device)

    def _camera_embeddings(self, batch: Mapping[str, Any], groups: Mapping[str, torch.Tensor],
                           slot_cameras: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """float32[B, K, d]: each present camera's embedding from its robot's adapter (zeros where
        absent); `slot_cameras` as `_slot_cameras` per robot."""
        mask = batch["camera_mask"].to(self.action_queries.device)
        out = self.action_queries.new_zeros(*mask.shape, self.config.width)
        for name, idx in groups.items():
            cols = slot_cameras[name]
            out[idx] = self.adapters[name].camera_embed[cols.clamp(min=0)] * (cols >= 0)[..., None]
        return out * mask[:, :, None]

    @staticmethod
    def _in_camera_order(per_slot: torch.Tensor, idx: torch.Tensor, cols: torch.Tensor, cameras: int) -> torch.Tensor:
        """Rows `idx` of a per-slot tensor float32[B, K, F] rearranged into the adapter's order of
        its `cameras` C, float32[len(idx), C, F] (zeros for a camera the sample lacks); `cols`
        from `_slot_cameras`."""
        rows, slots = (cols >= 0).nonzero(as_tuple=True)
        out = per_slot.new_zeros(len(idx), cameras, per_slot.shape[-1])
        return out.index_put((rows, cols[rows, slots]), per_slot[idx[rows], slots])

    def _image_shift(self, batch: Mapping[str, Any], present: tuple[torch.Tensor, torch.Tensor]
                     ) -> torch.Tensor | None:
        """How far training's augmentation moved each present image, float32[P, 2] (the batch's
        `image_shift` at the (sample, camera slot) indices `present`), or None: not shifted."""
        if "image_shift" not in batch:
            return None
        return batch["image_shift"].to(self.action_queries.device)[present]

    @staticmethod
    def _runs_by_own(groups: Mapping[str, torch.Tensor], own: Mapping[str, nn.Module | None]
                     ) -> list[tuple[nn.Module | None, torch.Tensor]] | None:
        """How to split a batch between the shared layers and robots' own (`own`: robot name ->
        its own module, or None): [(None, the samples of every robot without one), (module, its
        robot's samples), ...], or None when no robot of the batch has its own."""
        if all(module is None for module in own.values()):
            return None
        shared = [idx for name, idx in groups.items() if own[name] is None]
        return ([(None, torch.cat(shared))] if shared else []) + [
            (module, groups[name]) for name, module in own.items() if module is not None]

    def _encode_images(self, batch: Mapping[str, Any], film: torch.Tensor, groups: Mapping[str, torch.Tensor]
                       ) -> tuple[torch.Tensor, torch.Tensor | None, tuple[torch.Tensor, torch.Tensor]]:
        """Each present camera's image tokens float32[P, G, d] and keypoints float32[P, K, 2]
        (None for the grid readout), and the (sample, camera slot) index of each of the P
        images (P may be 0: then nothing runs). Reads the frozen backbone's cached features when
        the batch has them (training), and takes the batch's `image_shift` out of the positions
        the tokens carry (`ImageEncoder.tokens`). Images of robots with their own `ImageLayers`
        go through those, the others through the shared layers together."""
        device = self.action_queries.device
        present = batch["camera_mask"].to(device).nonzero(as_tuple=True)
        if not present[0].numel():
            return film.new_zeros(0, self.config.image_tokens, self.config.width), None, present
        cached = batch.get("image_features")
        features = (cached.to(device)[present] if cached is not None
                    else self.image.features(batch["images"].to(device)[present]))
        film = film[present[0]]
        shift = self._image_shift(batch, present)
        runs = self._runs_by_own(groups, {name: self.adapters[name].image_layers for name in groups})
        if runs is None:
            return *self.image.tokens(features, film, shift=shift), present
        runs = [(layers, rows) for layers, samples in runs
                if len(rows := torch.isin(present[0], samples).nonzero(as_tuple=True)[0])]
        outs = [self.image.tokens(features[rows], film[rows], layers, None if shift is None else shift[rows])
                for layers, rows in runs]
        back = torch.argsort(torch.cat([rows for _, rows in runs]))  # back into the order of `present`
        encoded = torch.cat([e for e, _ in outs])[back]
        keypoints = None if outs[0][1] is None else torch.cat([k for _, k in outs])[back]
        return encoded, keypoints, present

    def _context(self, batch: Mapping[str, Any], groups: Mapping[str, torch.Tensor]
                 ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Trunk outputs at the action queries, float32[B, H, d]; and the grounding loss
        (`config.grounding_weight`) when the batch carries role-pixel labels, else None."""
        device = self.action_queries.device
        lang, language_tokens, language_ignore = self._language(batch["instruction"])
        b, d, cfg = lang.shape[0], self.config.width, self.config
        camera_mask = batch["camera_mask"].to(device)
        k, g = camera_mask.shape[1], cfg.image_tokens
        slot_cameras = {name: self._slot_cameras(batch, self.adapters[name], idx, camera_mask)
                        for name, idx in groups.items()}
        image_tokens = lang.new_zeros(b, k, g, d)
        grounding = None
        encoded, keypoints, present = self._encode_images(batch, lang, groups)
        if present[0].numel():
            cams = self._camera_embeddings(batch, groups, slot_cameras)[present][:, None]
            image_tokens = image_tokens.index_put(present, encoded + cams)
            if cfg.grounding_weight and "role_pixels" in batch:
                grounding = grounding_loss(keypoints, batch["role_pixels"].to(device)[present])
        state, state_mask = batch["state"].to(device), batch["state_mask"].to(device)
        robot_tokens = lang.new_zeros(b, cfg.robot_tokens, d)
        state_tokens = lang.new_zeros(b, cfg.state_tokens, d)
        grounded_slots = None
        if cfg.grounded_state:
            grounded_slots = lang.new_zeros(b, k, GROUNDED_PER_CAMERA)
            if present[0].numel():
                shift = self._image_shift(batch, present)
                if shift is not None:  # where the keypoints are in the unshifted image
                    keypoints = keypoints - shift[:, None]
                grounded_slots = grounded_slots.index_put(present, grounded_keypoints(keypoints))
        for name, idx in groups.items():
            adapter = self.adapters[name]
            robot_tokens = robot_tokens.index_copy(0, idx, adapter.robot_tokens.expand(len(idx), -1, -1))
            n = adapter.state_dim
            grounded = (None if grounded_slots is None else
                        self._in_camera_order(grounded_slots, idx, slot_cameras[name], len(adapter.cameras)))
            state_tokens = state_tokens.index_copy(0, idx, adapter.state_tokens(state[idx, :n], state_mask[idx, :n],
                                                                               grounded))
        parts = [language_tokens, image_tokens.flatten(1, 2), robot_tokens, state_tokens,
                 self.action_queries.expand(b, -1, -1)]
        ignore = [language_ignore, (~camera_mask)[:, :, None].expand(-1, -1, g).flatten(1), None, None, None]
        return self._run_trunk(parts, ignore, groups), grounding

    def _run_trunk(self, parts: Sequence[torch.Tensor], ignore: Sequence[torch.Tensor | None],
                   groups: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """The trunk's outputs at the action queries float32[B, H, d] (`Trunk.forward`'s arguments,
        packed). The samples of robots with their own `LowRankUpdate` run the trunk with it, the
        others the shared trunk together."""
        chunk = self.config.chunk
        runs = self._runs_by_own(groups, {name: self.adapters[name].trunk_update for name in groups})
        if runs is None:
            return self.trunk(parts, ignore, keep_last=chunk, pack=True)
        out = parts[0].new_zeros(parts[0].shape[0], chunk, self.config.width)
        for update, rows in runs:
            args = ([x[rows] for x in parts], [None if m is None else m[rows] for m in ignore])
            context = (self.trunk(*args, keep_last=chunk, pack=True) if update is None
                       else update.run(self.trunk, *args, keep_last=chunk, pack=True))
            out = out.index_copy(0, rows, context)
        return out

    @torch.no_grad()
    def locate(self, batch: Mapping[str, Any]) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """Where each present camera's keypoints are: float32[P, K, 2] (normalized image
        coordinates; with `grounding_weight`, keypoint 0 is trained onto the named target and
        1 onto the goal), and the (sample, camera slot) index of each of the P images."""
        if not self.config.image_keypoints:
            raise InvalidInput("this policy reads its images through a pooled grid, not keypoints "
                               "(image_keypoints=0); there is nothing to locate")
        film, _, _ = self._language(batch["instruction"])
        _, keypoints, present = self._encode_images(batch, film, self._groups(batch))
        return keypoints, present

    @torch.no_grad()
    def keypoints_by_camera(self, obs: Observation) -> dict[str, np.ndarray]:
        """`locate` for one raw observation: camera name -> its keypoints float32[K, 2]
        (normalized image coordinates), for the cameras the observation has."""
        keypoints, (_, slots) = self.locate(self.observation_batch(obs))
        cameras = self.adapters[obs.robot].cameras
        return {cameras[int(s)]: k.cpu().numpy() for s, k in zip(slots, keypoints)}

    # --- training and inference -----------------------------------------------------------
    def forward(self, batch: Mapping[str, Any], generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """Loss of a (normalized) batch: {"loss": mean over valid action entries (plus
        grounding_weight x "grounding" when the batch has role-pixel labels), "loss/<robot>":
        the action loss per robot, "grounding": `grounding_loss`}. Entries where action_mask
        or action_valid is False count for nothing."""
        if batch["actions"].shape[1] != self.config.chunk:
            raise InvalidInput(f"the batch has action chunks of {batch['actions'].shape[1]} steps, the policy "
                               f"{self.config.chunk}; build the dataset with horizon={self.config.chunk}")
        groups = self._groups(batch)
        context, grounding = self._context(batch, groups)
        device = context.device
        actions = batch["actions"].to(device)
        weight = batch["action_valid"].to(device)[:, :, None] & batch["action_mask"].to(device)[:, None, :]
        weight = weight.to(actions.dtype)
        out, total, count = {}, context.new_zeros(()), context.new_zeros(())
        for name, idx in groups.items():
            adapter = self.adapters[name]
            m = adapter.action_dim
            w = weight[idx, :, :m]
            error = self.head.loss(context[idx], actions[idx, :, :m] * w, adapter, generator) * w
            out[f"loss/{name}"] = error.sum() / w.sum().clamp(min=1.0)
            total, count = total + error.sum(), count + w.sum()
        out["loss"] = total / count.clamp(min=1.0)
        if grounding is not None:
            out["grounding"] = grounding
            out["loss"] = out["loss"] + self.config.grounding_weight * grounding
        return out

    @torch.no_grad()
    def predict(self, batch: Mapping[str, Any], generator: torch.Generator | None = None) -> torch.Tensor:
        """Normalized actions float32[B, H, m], m the largest action dimension of the batch's
        robots; dimensions past a robot's own are 0 and mean nothing."""
        groups = self._groups(batch)
        context, _ = self._context(batch, groups)
        m = max(self.adapters[name].action_dim for name in groups)
        out = context.new_zeros(context.shape[0], self.config.chunk, m)
        for name, idx in groups.items():
            a = self.head.sample(context[idx], self.adapters[name], generator)
            out[idx, :, :a.shape[-1]] = a
        return out

    def observation_batch(self, obs: Observation) -> dict[str, Any]:
        """A batch of one (normalized state) from a raw observation."""
        adapter = self.adapters[obs.robot]
        if len(obs.state) != adapter.state_dim:
            raise InvalidInput(f"{obs.robot} observations have {adapter.state_dim} state dimensions, found {len(obs.state)}")
        unknown = sorted(set(obs.images) - set(adapter.cameras))
        if unknown:
            raise InvalidInput(f"{obs.robot} has no cameras {unknown}; its cameras: {adapter.cameras}")
        shapes = {img.shape for img in obs.images.values()}
        if len(shapes) > 1:
            raise InvalidInput(f"camera images of one observation differ in shape {sorted(shapes)}; resize them")
        shape = next(iter(shapes)) if shapes else (8, 8, 3)  # no camera: masked out, any size
        images = np.zeros((1, len(adapter.cameras), *shape), np.uint8)
        for j, cam in enumerate(adapter.cameras):
            if cam in obs.images:
                images[0, j] = obs.images[cam]
        state = self.normalizer.normalize_state(obs.robot, obs.state)
        return {"robot": [obs.robot], "instruction": [obs.instruction], "camera_slots": list(adapter.cameras),
                "state": torch.from_numpy(np.asarray(state, np.float32))[None],
                "state_mask": torch.ones(1, adapter.state_dim, dtype=torch.bool),
                "images": torch.from_numpy(images),
                "camera_mask": torch.tensor([[cam in obs.images for cam in adapter.cameras]])}

    def act(self, obs: Observation, generator: torch.Generator | None = None) -> ActionChunk:
        """Raw observation -> action chunk in robot units."""
        was_training = self.training
        self.eval()
        try:
            actions = self.predict(self.observation_batch(obs), generator)[0].cpu().numpy()
        finally:
            self.train(was_training)
        actions = self.normalizer.unnormalize_actions(obs.robot, actions)
        if self.config.relative_actions:
            actions = relative_to_state(actions, obs.state, inverse=True)
        return ActionChunk(actions)
