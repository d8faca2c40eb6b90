import pytest
import torch

from embodied.errors import InvalidInput, NoAdapter


def loss(policy, batch, seed=0):
    return policy(batch, generator=torch.Generator().manual_seed(seed))["loss"]


@pytest.mark.parametrize("head", ["l1", "flow"])
@pytest.mark.parametrize("language_tokens", [0, 8])
def test_mixed_robot_batch_shapes(make_policy, make_batch, head, language_tokens):
    policy = make_policy(head=head, language_tokens=language_tokens, film_queries=min(language_tokens, 1))
    batch = make_batch()
    out = policy(batch)
    assert set(out) == {"loss", "loss/so100", "loss/panda"} and out["loss"].ndim == 0
    pred = policy.predict(batch, generator=torch.Generator().manual_seed(0))
    assert pred.shape == (3, 4, 8)
    assert torch.all(pred[[0, 2], :, 6:] == 0)  # so100 has 6 action dimensions


@pytest.mark.parametrize("head", ["l1", "flow"])
def test_masked_actions_do_not_count(make_policy, make_batch, head):
    policy, batch = make_policy(head=head), make_batch()
    padded = batch["actions"].clone()
    padded[2, 2:] += 100.0  # steps past the episode end (action_valid False)
    assert torch.equal(loss(policy, dict(batch, actions=padded)), loss(policy, batch))
    action_mask = batch["action_mask"].clone()
    action_mask[1, 3] = False  # panda's 4th dimension absent
    masked = dict(batch, action_mask=action_mask)
    absent = batch["actions"].clone()
    absent[1, :, 3] += 100.0
    assert torch.equal(loss(policy, dict(masked, actions=absent)), loss(policy, masked))
    assert not torch.equal(loss(policy, dict(batch, actions=absent)), loss(policy, batch))


def test_masked_camera_pixels_do_not_matter(make_policy, make_batch):
    policy, batch = make_policy().eval(), make_batch()
    images = batch["images"].clone()
    images[0, 2] = 255 - images[0, 2]  # so100 has no "external" camera
    images[1, 0] = 0  # panda has no "front" camera
    assert torch.equal(policy.predict(batch), policy.predict(dict(batch, images=images)))
    images[0, 1] = 0  # a present camera does matter
    assert not torch.equal(policy.predict(batch), policy.predict(dict(batch, images=images)))


def test_language_changes_features_and_actions(make_policy, make_batch, language):
    policy, batch = make_policy().eval(), make_batch()
    other = dict(batch, instruction=["pick up the blue cube", *batch["instruction"][1:]])
    assert not torch.allclose(policy.predict(batch)[0], policy.predict(other)[0])
    assert torch.equal(policy.predict(batch)[1:], policy.predict(other)[1:])
    red, blue = (policy._language([f"pick up the {c} cube"])[0] for c in ("red", "blue"))
    assert red.shape == (1, (1 + policy.config.film_queries) * language.dim)  # sentence + pooled tokens
    image = batch["images"][0, :1]
    assert not torch.allclose(policy.image(image, red), policy.image(image, blue))  # FiLM


def test_film_pool_attends_over_real_tokens_only(make_policy, language):
    """Zero queries pool the mean of the real tokens (MiniLM's sentence embedding, unnormalized);
    padding never counts; a query aimed at the colour word tells two colours apart far better."""
    policy = make_policy(language_tokens=16, film_queries=2).eval()
    texts = ["lift the red cube", "lift the blue cube"]
    tokens, mask = (torch.from_numpy(a) for a in language.tokens(texts, 16))
    pooled = policy.film_pool(tokens, mask).unflatten(1, (2, language.dim))
    mean = (tokens * mask[:, :, None]).sum(1) / mask.sum(1, keepdim=True)
    torch.testing.assert_close(pooled, mean[:, None].expand(-1, 2, -1))
    garbage = tokens.masked_fill(~mask[:, :, None], 1e3)
    torch.testing.assert_close(policy.film_pool(garbage, mask), policy.film_pool(tokens, mask).detach())
    cos = torch.nn.functional.cosine_similarity
    torch.testing.assert_close(cos(mean[0], mean[1], dim=0), cos(*torch.from_numpy(language(texts)), dim=0))
    with torch.no_grad():  # [CLS] lift the red cube [SEP]: aim both queries at position 3
        policy.film_pool.queries.copy_(tokens[0, 3].expand(2, -1) * 0.5)
    colour = policy.film_pool(tokens, mask).unflatten(1, (2, language.dim))[:, 0]
    assert cos(colour[0], colour[1], dim=0) < cos(mean[0], mean[1], dim=0) - 0.1


def trunk_language(policy, batch) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The language part of the trunk's tokens on `batch`, and its ignore mask."""
    seen = []
    hook = policy.trunk.register_forward_pre_hook(lambda module, args: seen.append((args[0][0], args[1][0])))
    try:
        policy.predict(batch)
    finally:
        hook.remove()
    return seen[0]


def test_language_tokens_enter_the_trunk_with_padding_masked(make_policy, make_batch, language, monkeypatch):
    policy, batch = make_policy(language_tokens=8).eval(), make_batch()
    tokens, mask = language.tokens(batch["instruction"], 8)
    assert (~mask).any()  # "push the blue cube" is padded
    part, ignore = trunk_language(policy, batch)
    assert part.shape == (3, 8, 32) and torch.equal(ignore, torch.from_numpy(~mask))
    before = policy.predict(batch)
    padded = tokens.copy()
    padded[~mask] = 10.0
    monkeypatch.setattr(language, "tokens", lambda texts, length: (padded, mask))
    assert torch.allclose(policy.predict(batch), before, atol=1e-6)  # what lies at the padding does not matter
    part, ignore = trunk_language(make_policy(language_tokens=0, film_queries=0).eval(), batch)
    assert part.shape == (3, 1, 32) and ignore is None  # one pooled sentence token


def test_language_dropout_leaves_out_real_tokens_in_training_only(make_policy, make_batch, language):
    policy, batch = make_policy(language_tokens=8, language_dropout=0.5), make_batch()
    _, mask = language.tokens(batch["instruction"], 8)
    padding = torch.from_numpy(~mask)
    torch.manual_seed(0)
    _, ignore = trunk_language(policy.train(), batch)
    dropped = ignore & ~padding
    assert (ignore >= padding).all()  # padding stays ignored
    assert dropped.any() and not dropped[:, 0].any()  # real tokens left out, never [CLS]
    assert 0.2 < dropped.sum() / (~padding)[:, 1:].sum() < 0.8
    _, ignore = trunk_language(policy.eval(), batch)
    assert torch.equal(ignore, padding)  # inference reads every token


@pytest.mark.parametrize("head", ["l1", "flow"])
def test_heads_fit_a_fixed_batch(make_policy, make_batch, head):
    policy, batch = make_policy(head=head), make_batch()
    before = loss(policy, batch).item()
    opt = torch.optim.AdamW(policy.parameters(), lr=1e-2)
    for step in range(50):
        opt.zero_grad()
        policy(batch, generator=torch.Generator().manual_seed(step))["loss"].backward()
        opt.step()
    assert loss(policy, batch).item() < 0.5 * before


def test_adapter_only_training_leaves_the_rest(make_policy, make_batch):
    policy, batch = make_policy(), make_batch()
    trainable = policy.adapter_only("panda")
    assert {id(p) for p in trainable} == {id(p) for p in policy.parameters() if p.requires_grad}
    frozen = {k: v.clone() for k, v in policy.state_dict().items() if not k.startswith("adapters.robots.panda.")}
    panda = {k: v.clone() for k, v in policy.adapters.adapter_state_dict("panda").items()}
    opt = torch.optim.AdamW([p for p in policy.parameters() if p.requires_grad], lr=1e-2, weight_decay=0.1)
    policy(batch)["loss"].backward()
    opt.step()
    state = policy.state_dict()
    assert all(torch.equal(state[k], v) for k, v in frozen.items())
    assert any(not torch.equal(policy.adapters.adapter_state_dict("panda")[k], v) for k, v in panda.items())
    assert set(panda) == set(policy.adapters.robots["panda"].state_dict())


def test_add_robot_and_bad_batches(make_policy, make_batch):
    policy, batch = make_policy(), make_batch()
    with pytest.raises(NoAdapter, match="did you mean 'panda'"):
        policy(dict(batch, robot=["so100", "pandas", "so100"]))
    policy.add_robot("ur5e", 7, 7, ["front", "side"])
    assert "ur5e" in policy.adapters.names
    bad = dict(batch, state=batch["state"].clone())
    bad["state"][0, 0] = float("nan")
    with pytest.raises(InvalidInput, match="NaN"):
        policy(bad)
    with pytest.raises(InvalidInput, match="horizon=4"):
        policy(make_batch(chunk=5))
    with pytest.raises(InvalidInput, match="non-empty text"):
        policy(dict(batch, instruction=["", "push", "push"]))


def test_robot_image_layers_serve_their_robot_alone(make_policy, make_batch):
    """A robot's own image layers start as the shared ones (same actions); changed, they change
    only that robot's actions in a mixed batch, and adapter-only training tunes them and leaves
    the shared layers as they were."""
    policy = make_policy(image_keypoints=3, grounding_weight=1.0, grounded_state=True).eval()
    batch = {k: v if k == "camera_slots" else v[[1, 0, 2]] if torch.is_tensor(v) else [v[i] for i in (1, 0, 2)]
             for k, v in make_batch().items()}  # panda first: its images are not the first run's
    before = policy.predict(batch)
    panda = policy.adapters.adapter_state_dict("panda")
    policy.add_robot("panda", 8, 8, ["wrist", "external"], image_layers=True).load_state_dict(panda, strict=False)
    torch.testing.assert_close(policy.predict(batch), before)
    own = policy.adapters["panda"].image_layers
    with torch.no_grad():
        own.convs[0].weight.add_(torch.randn_like(own.convs[0].weight))
        own.keypoint_logits.bias.add_(1.0)
    after = policy.predict(batch)
    torch.testing.assert_close(after[1:], before[1:])  # so100 reads the shared layers
    assert not torch.allclose(after[0], before[0])
    shared = {k: v.clone() for k, v in policy.image.state_dict().items()}
    mine = {k: v.clone() for k, v in own.state_dict().items()}
    trainable = policy.adapter_only("panda")
    assert {id(p) for p in own.parameters()} <= {id(p) for p in trainable}
    opt = torch.optim.AdamW(trainable, lr=1e-2)
    policy.train()
    policy(batch)["loss"].backward()
    opt.step()
    assert all(torch.equal(policy.image.state_dict()[k], v) for k, v in shared.items())
    assert any(not torch.equal(own.state_dict()[k], v) for k, v in mine.items())
