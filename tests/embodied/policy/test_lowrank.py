"""A robot's own low-rank update of the trunk: it starts as the shared trunk, changes only its
robot's outputs, trains only itself, and merges into a copy of the trunk that computes the same."""

import pytest
import torch

from embodied.errors import ConfigError
from embodied.policy.lowrank import LowRankUpdate, weight_matrices


def predict(policy, batch):
    return policy.predict(batch, torch.Generator().manual_seed(0))


def only(batch, robot):
    """The samples of one robot, as a batch of their own."""
    rows = [i for i, name in enumerate(batch["robot"]) if name == robot]
    return {k: ([v[i] for i in rows] if isinstance(v, list) and k != "camera_slots" else
                v[rows] if isinstance(v, torch.Tensor) else v) for k, v in batch.items()}


def nudge(update: LowRankUpdate) -> None:
    """What training does to a fresh update: B moves away from zero."""
    with torch.no_grad():
        for up in update.up:
            up.normal_(0.0, 0.5)


def test_the_update_covers_the_trunks_matrices(make_policy):
    policy = make_policy()
    names = [name for name, _ in weight_matrices(policy.trunk)]
    depth = policy.config.depth
    assert len(names) == 4 * depth and "type_embed" not in names
    assert all(any(name.endswith(s) for s in ("in_proj_weight", "out_proj.weight", "linear1.weight",
                                              "linear2.weight")) for name in names)
    update = LowRankUpdate(policy.trunk, 2)
    d = policy.config.width
    assert sum(p.numel() for p in update.parameters()) == depth * 2 * (4 * d + 2 * d + 2 * (d + 2 * d))
    with pytest.raises(ConfigError, match="--trunk-rank"):
        LowRankUpdate(policy.trunk, d + 1)


def test_a_robots_update_changes_its_outputs_alone(make_policy, make_batch):
    policy = make_policy().eval()
    batch = make_batch()
    shared = predict(policy, batch)
    adapter = policy.adapters["so100"]
    adapter.trunk_update = LowRankUpdate(policy.trunk, 2)
    assert torch.allclose(predict(policy, batch), shared, atol=1e-6)  # B = 0: the shared trunk
    nudge(adapter.trunk_update)
    updated = predict(policy, batch)
    so100 = [i for i, name in enumerate(batch["robot"]) if name == "so100"]
    assert (updated[so100] - shared[so100]).abs().max() > 1e-2
    assert torch.allclose(updated[1], shared[1], atol=1e-6)  # panda runs the shared trunk
    # a mixed batch computes what each robot's batch computes alone
    for robot in ("so100", "panda"):
        rows = [i for i, name in enumerate(batch["robot"]) if name == robot]
        alone = predict(policy, only(batch, robot))
        assert torch.allclose(updated[rows, :, :alone.shape[-1]], alone, atol=1e-5)


def test_adapter_only_training_moves_the_update_and_not_the_trunk(make_policy, make_batch):
    policy = make_policy()
    policy.adapters["so100"].trunk_update = LowRankUpdate(policy.trunk, 2)
    trunk_before = {k: v.clone() for k, v in policy.trunk.state_dict().items()}
    params = policy.adapter_only("so100")
    update = policy.adapters["so100"].trunk_update
    assert {id(p) for p in update.parameters()} <= {id(p) for p in params}
    optimizer = torch.optim.Adam(params, lr=1e-2)
    for _ in range(3):
        optimizer.zero_grad()
        policy(only(make_batch(), "so100"))["loss"].backward()
        optimizer.step()
    assert any(up.abs().max() > 0 for up in update.up)
    assert all(torch.equal(trunk_before[k], v) for k, v in policy.trunk.state_dict().items())


def test_merged_trunk_computes_what_the_update_computes(make_policy):
    policy = make_policy().eval()
    update = LowRankUpdate(policy.trunk, 3)
    nudge(update)
    d, g = policy.config.width, torch.Generator().manual_seed(1)
    parts = [torch.randn(2, n, d, generator=g) for n in (3, 4, 1, 1, policy.config.chunk)]
    ignore = [None] * 5
    merged = update.merged(policy.trunk)
    with torch.no_grad():
        expected = update.run(policy.trunk, parts, ignore, keep_last=policy.config.chunk)
        assert torch.allclose(merged(parts, ignore, keep_last=policy.config.chunk), expected, atol=1e-5)
        assert not torch.allclose(policy.trunk(parts, ignore, keep_last=policy.config.chunk), expected, atol=1e-3)
