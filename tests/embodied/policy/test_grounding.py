"""The grounding loss: keypoints 0 and 1 learn where the instruction's target and goal are."""

import pytest
import torch

from embodied.errors import ConfigError
from embodied.policy.config import preset
from embodied.policy.encoders import fourier_features
from embodied.policy.model import grounding_loss

NAN = float("nan")


def test_grounding_loss_averages_known_labels_only():
    keypoints = torch.tensor([[[0.0, 0.0], [0.5, 0.5], [0.9, 0.9]],
                              [[1.0, 0.0], [0.0, 0.0], [0.0, 0.0]]])
    labels = torch.tensor([[[0.2, -0.1], [NAN, NAN]],
                           [[0.0, 0.0], [0.5, 0.25]]])
    # known: (0, target) error 0.3, (1, target) error 1.0, (1, goal) error 0.75; keypoint 2 is free
    assert grounding_loss(keypoints, labels).item() == pytest.approx((0.3 + 1.0 + 0.75) / 3)
    assert grounding_loss(keypoints, torch.full_like(labels, NAN)).item() == 0.0


def test_grounding_weight_needs_two_keypoints():
    with pytest.raises(ConfigError, match="image_keypoints >= 2"):
        preset("tiny", grounding_weight=1.0)
    with pytest.raises(ConfigError, match="grounding_weight must be a number >= 0"):
        preset("tiny", image_keypoints=2, grounding_weight=-1.0)
    assert preset("tiny", image_keypoints=2, grounding_weight=0.5).grounding_weight == 0.5


def test_loss_adds_the_weighted_grounding_term(make_policy, make_batch):
    batch = make_batch(size=32)
    batch["role_pixels"] = torch.rand(3, 3, 2, 2) * 2 - 1
    batch["role_pixels"][:, :, 1] = NAN  # no goal
    weighted = make_policy(image_keypoints=2, grounding_weight=0.5)
    plain = make_policy(image_keypoints=2)
    plain.load_state_dict(weighted.state_dict())
    a, b = weighted(batch), plain(batch)
    assert "grounding" in a and "grounding" not in b
    assert a["loss"].item() == pytest.approx(b["loss"].item() + 0.5 * a["grounding"].item(), rel=1e-5)
    del batch["role_pixels"]
    assert "grounding" not in weighted(batch)  # unlabelled data: the action loss alone


def _scenes(g: torch.Generator, n: int, size: int = 32):
    """Images with a red and a blue square at random places; the instruction names one of
    them, and the label is where that one is."""
    images = torch.full((n, 1, size, size, 3), 60, dtype=torch.uint8)
    labels = torch.full((n, 1, 2, 2), NAN)
    instructions = []
    for i in range(n):
        corners = torch.randint(2, size - 8, (2, 2), generator=g)
        while (corners[0] - corners[1]).abs().max() < 8:
            corners = torch.randint(2, size - 8, (2, 2), generator=g)
        for (row, col), channel in zip(corners.tolist(), (0, 2)):
            images[i, 0, row:row + 6, col:col + 6] = 30
            images[i, 0, row:row + 6, col:col + 6, channel] = 240
        named = int(torch.randint(0, 2, (1,), generator=g))
        row, col = corners[named].tolist()
        labels[i, 0, 0] = torch.tensor([(col + 3) / size * 2 - 1, (row + 3) / size * 2 - 1])
        instructions.append(f"push the {('red', 'blue')[named]} cube")
    return images, labels, instructions


def test_keypoint_learns_to_find_the_named_object(make_policy):
    """Trained with the grounding loss alone on synthetic scenes, keypoint 0 lands on the
    square the instruction names in new scenes, well closer than the other square is."""
    torch.manual_seed(0)
    policy = make_policy(image_keypoints=2, grounding_weight=1.0, image_channels=[16, 32, 32])
    g = torch.Generator().manual_seed(0)
    params = [p for p in policy.image.parameters() if p.requires_grad] + list(policy.film_pool.parameters())
    opt = torch.optim.Adam(params, lr=3e-3)

    def error(images, labels, instructions):
        film, _, _ = policy._language(instructions)
        _, keypoints = policy.image.tokens(policy.image.features(images[:, 0]), film)
        return grounding_loss(keypoints, labels[:, 0])

    for _ in range(250):
        loss = error(*_scenes(g, 32))
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        images, labels, instructions = _scenes(torch.Generator().manual_seed(123), 64)
        named = error(images, labels, instructions).item()
        swapped = [t.replace("red", "RED").replace("blue", "red").replace("RED", "blue") for t in instructions]
        other = error(images, labels, swapped).item()  # the keypoint follows the word, not the scene
    assert named < 0.25 and other > 2 * named, (named, other)


def test_locate_returns_each_present_cameras_keypoints(make_policy, make_batch):
    batch = make_batch(size=32)
    keypoints, (samples, slots) = make_policy(image_keypoints=3).locate(batch)
    assert keypoints.shape == (int(batch["camera_mask"].sum()), 3, 2) and keypoints.abs().max() <= 1
    assert batch["camera_mask"][samples, slots].all()
    from embodied.errors import InvalidInput

    with pytest.raises(InvalidInput, match="nothing to locate"):
        make_policy().locate(batch)


def test_grounded_state_needs_the_grounding_loss():
    with pytest.raises(ConfigError, match="grounded_state reads the grounded keypoints"):
        preset("tiny", image_keypoints=2, grounded_state=True)
    assert preset("tiny", image_keypoints=2, grounding_weight=1.0, grounded_state=True).grounded_state


def test_grounded_state_reads_each_robots_cameras_in_its_own_order(make_policy, make_batch):
    """The state stem reads keypoints 0 and 1 of the robot's cameras in the adapter's camera
    order, whatever the batch's slot order, and an absent camera as zeros (not as a keypoint
    at the image centre)."""
    policy = make_policy(image_keypoints=2, grounding_weight=1.0, grounded_state=True).eval()
    batch = make_batch(size=32)
    order = [2, 0, 1]  # the same images under another slot order: external, front, wrist
    shuffled = dict(batch, camera_slots=[batch["camera_slots"][j] for j in order],
                    images=batch["images"][:, order], camera_mask=batch["camera_mask"][:, order])
    so100 = policy.adapters["so100"]  # cameras front, wrist; samples 0 and 2 of the batch

    def stem_input(b):
        seen = []
        hook = so100.state_stem.register_forward_hook(lambda module, args, out: seen.append(args[0]))
        actions = policy.predict(b)
        hook.remove()
        return seen[0][:, 2 * so100.state_dim:].unflatten(1, (2, 5)), actions  # [so100 samples, camera, 5]

    grounded, actions = stem_input(batch)
    keypoints, (samples, slots) = policy.locate(batch)
    for row, sample in enumerate((0, 2)):
        for cam, slot in enumerate((0, 1)):  # front, wrist
            at = ((samples == sample) & (slots == slot)).nonzero().item()
            torch.testing.assert_close(grounded[row, cam, :4], keypoints[at, :2].flatten())
    assert (grounded[:, :, 4] == 1).all()
    grounded_shuffled, actions_shuffled = stem_input(shuffled)
    torch.testing.assert_close(grounded_shuffled, grounded)
    torch.testing.assert_close(actions_shuffled, actions)

    no_wrist = dict(batch, camera_mask=batch["camera_mask"].clone())
    no_wrist["camera_mask"][:, 1] = False
    grounded, _ = stem_input(no_wrist)
    assert (grounded[:, 0, 4] == 1).all() and (grounded[:, 1] == 0).all()


def test_grounded_state_takes_the_image_shift_back_out(make_policy, make_batch):
    """Training shifts images at random while the actions stay; the state stem reads each
    keypoint less its image's shift (where it is in the unshifted image), and the grounding
    loss still compares the keypoints with the shifted labels."""
    policy = make_policy(image_keypoints=2, grounding_weight=1.0, grounded_state=True).eval()
    batch = make_batch(size=32)
    shift = (torch.rand(3, 3, 2) * 2 - 1) * 0.25
    so100 = policy.adapters["so100"]  # cameras front, wrist in slots 0, 1; samples 0 and 2
    seen = []
    hook = so100.state_stem.register_forward_hook(lambda module, args, out: seen.append(args[0]))
    policy.predict(batch)
    policy.predict(dict(batch, image_shift=shift))
    hook.remove()
    before, after = (x[:, 2 * so100.state_dim:].unflatten(1, (2, 5)) for x in seen)
    expected = shift[[0, 2]][:, :2].repeat(1, 1, 2)  # keypoints 0 and 1 of front and wrist
    torch.testing.assert_close(before[..., :4] - after[..., :4], expected)
    torch.testing.assert_close(before[..., 4], after[..., 4])  # present flags unchanged
    with_shift = policy(dict(batch, image_shift=shift, role_pixels=torch.zeros(3, 3, 2, 2)))["grounding"]
    torch.testing.assert_close(with_shift, policy(dict(batch, role_pixels=torch.zeros(3, 3, 2, 2)))["grounding"])


def test_image_tokens_carry_keypoint_positions_less_the_image_shift(make_policy, make_batch):
    policy = make_policy(image_keypoints=2, grounding_weight=1.0).eval()
    batch = make_batch(size=32)
    shift = (torch.rand(3, 3, 2) * 2 - 1) * 0.25
    seen = []
    hook = policy.image.keypoint_where.register_forward_hook(lambda module, args, out: seen.append(args[0]))
    policy.predict(dict(batch, image_shift=shift))
    hook.remove()
    keypoints, present = policy.locate(batch)  # where they are in the images as given
    torch.testing.assert_close(seen[0], fourier_features(keypoints - shift[present][:, None]))
