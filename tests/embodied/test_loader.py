"""Pooled loader: chunk content and padding, normalization, mixed-robot batches, mixtures,
recipes and augmentation, on real zarr stores written to disk."""

from pathlib import Path

import numpy as np
import pytest
import torch

from embodied.data import Episode, EpisodeStore
from embodied.data.collate import Collate
from embodied.data.loader import PooledDataset, make_loader
from embodied.data.mixture import MissingDataset, RecipeError, load_recipe
from embodied.data.sampler import ChunkBatchSampler, MixtureSampler, UniformBatchSampler
from embodied.data.stats import compute_stats
from embodied.data.subset import FirstEpisodes
from embodied.data.transforms import ImageAugment, Normalize, ResizeImages, StateNoise, Unnormalize
from embodied.errors import DataError

H = 4


def _store(path: Path, robot: str, state_dim: int, action_dim: int, cameras: dict, lengths: list[int],
           seed: int = 0) -> EpisodeStore:
    """Actions encode (episode, frame, dimension) so chunks can be checked exactly."""
    store = EpisodeStore.create(path, robot, 10.0, state_dim, action_dim, cameras)
    rng = np.random.default_rng(seed)
    for e, t in enumerate(lengths):
        frame = np.arange(t, dtype=np.float32)[:, None]
        action = 100 * e + frame + 0.01 * np.arange(action_dim, dtype=np.float32)
        state = rng.normal(size=(t, state_dim)).astype(np.float32)
        images = {c: rng.integers(0, 255, size=(t, h, w, 3), dtype=np.uint8) for c, (h, w) in cameras.items()}
        store.append(Episode(state, action, np.arange(t, dtype=np.float32) / 10, images, task=f"{robot} task {e}"))
    store.stats()
    return EpisodeStore.open(path)


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    d = tmp_path_factory.mktemp("stores")
    a = _store(d / "a.zarr", "so100", 6, 6, {"front": (16, 16), "wrist": (16, 16)}, [7, 5, 9])
    b = _store(d / "b.zarr", "panda", 8, 8, {"top": (16, 16)}, [6, 6], seed=1)
    return a, b


def test_chunk_content_and_padding_at_episode_end(stores):
    a, _ = stores
    ds = PooledDataset([a], horizon=H, normalization="none")
    assert len(ds) == 21
    start, end = a.bounds(1)  # frames [7, 12)
    for f in range(start, end):
        s = ds[f]
        k = f - start
        valid = np.arange(k, k + H) < end - start
        np.testing.assert_array_equal(s["action_valid"], valid)
        expected = a.read("action", 0, a.num_frames)[np.minimum(np.arange(f, f + H), end - 1)]
        np.testing.assert_array_equal(s["actions"], expected)  # padding repeats the last action
        np.testing.assert_array_equal(s["state"], a.read("observation.state", f, f + 1)[0])
        for cam in ("front", "wrist"):
            np.testing.assert_array_equal(s["images"][cam], a.read(f"observation.images.{cam}", f, f + 1)[0])
        assert (s["robot"], s["instruction"], s["episode"], s["frame"]) == ("so100", "so100 task 1", 1, k)
    last = ds[end - 1]
    assert last["action_valid"].tolist() == [True, False, False, False]
    assert np.all(last["actions"] == last["actions"][0])


@pytest.mark.parametrize("mode", ["mean_std", "quantile"])
def test_normalization_round_trip(stores, mode):
    a, b = stores
    ds = PooledDataset([a, b], horizon=H, normalization=mode)
    raw = ds.raw(25)
    norm = ds[25]
    assert norm["robot"] == "panda"
    assert not np.allclose(norm["actions"], raw["actions"])
    back = ds.output_transform()(norm)
    np.testing.assert_allclose(back["actions"], raw["actions"], rtol=1e-5, atol=1e-4)
    state_back = Unnormalize(ds.norm_stats, mode, keys=("state",))(norm)["state"]
    np.testing.assert_allclose(state_back, raw["state"], rtol=1e-5, atol=1e-4)
    # the per-sample transform gives the numbers the precomputed columns give
    np.testing.assert_allclose(Normalize(ds.norm_stats, mode)(raw)["actions"], norm["actions"], rtol=1e-6)
    if mode == "mean_std":  # normalized actions of a robot have ~zero mean, unit std over its frames
        acts = np.stack([ds[i]["actions"][0] for i in range(21)])
        np.testing.assert_allclose(acts.mean(0), 0, atol=1e-4)
        np.testing.assert_allclose(acts.std(0), 1, atol=1e-3)


@pytest.mark.parametrize("mode", ["mean_std", "quantile"])
def test_relative_actions_are_joint_targets_minus_the_chunk_start_state(stores, mode):
    a, b = stores
    absolute = PooledDataset([a, b], horizon=H, normalization="none")
    relative_raw = PooledDataset([a, b], horizon=H, normalization="none", relative_actions=True)
    relative = PooledDataset([a, b], horizon=H, normalization=mode, relative_actions=True)
    for i in (0, 6, 11, 25, len(absolute) - 1):  # so100 (6 dims) and panda (8), chunks padded at episode ends
        x, r = absolute.raw(i), relative_raw[i]
        joints = x["actions"].shape[1] - 1
        np.testing.assert_allclose(r["actions"][:, :joints], x["actions"][:, :joints] - x["state"][:joints], atol=1e-5)
        np.testing.assert_array_equal(r["actions"][:, joints], x["actions"][:, joints])  # the gripper stays absolute
        back = relative.output_transform()({**relative[i], "state": x["state"]})
        np.testing.assert_allclose(back["actions"], x["actions"], rtol=1e-5, atol=1e-3)
    if mode == "mean_std":  # the statistics are those of relative chunks: every valid step, not single frames
        steps = np.concatenate([relative[i]["actions"][relative[i]["action_valid"]] for i in range(21)])
        np.testing.assert_allclose(steps.mean(0), 0, atol=1e-3)
        np.testing.assert_allclose(steps.std(0), 1, atol=1e-3)


def test_mixed_robot_batch_has_dimension_and_camera_masks(stores):
    a, b = stores
    ds = PooledDataset([a, b], horizon=H)
    assert ds.camera_slots == ["front", "wrist", "top"]
    batch = Collate(tuple(ds.camera_slots))([ds[0], ds[22], ds[3]])
    assert batch["robot"] == ["so100", "panda", "so100"]
    assert batch["state"].shape == (3, 8) and batch["actions"].shape == (3, H, 8)
    assert batch["state_mask"].tolist() == [[True] * 6 + [False] * 2, [True] * 8, [True] * 6 + [False] * 2]
    assert batch["action_mask"].tolist() == batch["state_mask"].tolist()
    assert batch["images"].shape == (3, 3, 16, 16, 3) and batch["images"].dtype == torch.uint8
    assert batch["camera_mask"].tolist() == [[True, True, False], [False, False, True], [True, True, False]]
    assert batch["cameras"][1] == ["top"]
    np.testing.assert_array_equal(batch["images"][1, 2].numpy(), ds[22]["images"]["top"])
    assert batch["images"][1, :2].abs().sum() == 0
    np.testing.assert_array_equal(batch["actions"][0, :, :6].numpy(), ds[0]["actions"])
    # positional slots and fixed dims
    pos = Collate(camera_slots=2, state_dim=10, action_dim=12)([ds[0], ds[22]])
    assert pos["camera_mask"].tolist() == [[True, True], [True, False]] and pos["actions"].shape == (2, H, 12)
    with pytest.raises(DataError, match="no slot"):
        Collate(("front",))([ds[22]])


def test_loader_end_to_end_with_workers(stores):
    a, b = stores
    loader = make_loader([a, b], batch_size=8, horizon=H, num_workers=2, num_samples=40, window=2)
    batches = list(loader)
    assert len(batches) == 5 and all(bt["state"].shape == (8, 8) for bt in batches)
    assert {r for bt in batches for r in bt["robot"]} == {"so100", "panda"}


def test_resize_lets_resolutions_mix(tmp_path, stores):
    a, _ = stores
    c = _store(tmp_path / "c.zarr", "koch", 6, 6, {"front": (24, 32)}, [5])
    ds = PooledDataset([a, c], horizon=H)
    with pytest.raises(DataError, match="ResizeImages"):
        Collate()([ds[0], ds[21]])
    ds = PooledDataset([a, c], horizon=H, transforms=[ResizeImages(16, 16)])
    assert Collate()([ds[0], ds[21]])["images"].shape == (2, 2, 16, 16, 3)


@pytest.mark.parametrize("kind", ["chunk", "mixture", "uniform"])
def test_mixture_weights_are_respected(stores, kind):
    a, b = stores  # 21 and 12 frames: weights, not sizes, decide
    ds = PooledDataset([a, b], horizon=H)
    if kind == "chunk":
        sampler = ChunkBatchSampler(ds, 32, weights=[1, 3], num_samples=32 * 200, window=2, num_workers=2, seed=3)
        keys = [k for batch in sampler for k in batch]
    elif kind == "uniform":
        batches = list(UniformBatchSampler(ds, 32, weights=[1, 3], num_samples=6400, seed=3))
        assert len(batches) == 200 and {len(b) for b in batches} == {32}
        keys = [k for batch in batches for k in batch]
    else:
        keys = list(MixtureSampler(ds, weights=[1, 3], num_samples=6400, seed=3))
    frac_b = np.mean([i >= 21 for i, _ in keys])
    assert abs(frac_b - 0.75) < 0.02  # binomial sd is 0.0054
    counts = np.bincount([i for i, _ in keys], minlength=33)
    assert counts.min() > 0  # every frame is visited
    again = {"mixture": lambda: list(MixtureSampler(ds, [1, 3], 6400, seed=3)),
             "uniform": lambda: [k for b in UniformBatchSampler(ds, 32, [1, 3], 6400, seed=3) for k in b],
             "chunk": lambda: [k for b in ChunkBatchSampler(ds, 32, [1, 3], 32 * 200, 2, 2, seed=3) for k in b]}[kind]()
    assert again == keys


def test_preloaded_dataset_serves_the_same_samples_without_reading_again(stores):
    a, b = stores
    lazy, loaded = PooledDataset([a, b], horizon=H, augment=ImageAugment()), PooledDataset([a, b], horizon=H,
                                                                                            augment=ImageAugment())
    assert loaded.image_bytes() == (21 * 2 + 12) * 16 * 16 * 3 and not loaded.preloaded
    loaded.preload()
    assert loaded.preloaded
    for key in [(0, 1), (20, 2), (21, 3), (32, 4)]:
        x, y = lazy[key], loaded[key]
        assert x["images"].keys() == y["images"].keys()
        for cam in x["images"]:
            np.testing.assert_array_equal(x["images"][cam], y["images"][cam])
        np.testing.assert_array_equal(x["actions"], y["actions"])
    loaded.sources = [None, None]  # a preloaded dataset never reads its sources for images again
    loaded[(5, 0)]


def test_chunk_sampler_gives_workers_disjoint_chunks(stores):
    a, _ = stores
    ds = PooledDataset([a], horizon=H)
    ds._chunk = [{"front": 4, "wrist": 4}]  # pretend 4-frame chunks: 6 chunks
    batches = list(ChunkBatchSampler(ds, 3, num_samples=3 * 14, window=1, num_workers=2, seed=0))
    chunks = [{i // 4 for b in batches[w::2] for i, _ in b} for w in range(2)]
    assert chunks[0] and chunks[1] and not chunks[0] & chunks[1]


def test_augmentation_changes_images_keeps_shapes_and_is_seeded(stores):
    a, _ = stores
    plain = PooledDataset([a], horizon=H)
    aug = PooledDataset([a], horizon=H, augment=ImageAugment(shift_px=2, brightness=0.2, contrast=0.2))
    x, y = plain[(5, 123)], aug[(5, 123)]
    for cam in ("front", "wrist"):
        assert y["images"][cam].shape == x["images"][cam].shape and y["images"][cam].dtype == np.uint8
        assert not np.array_equal(y["images"][cam], x["images"][cam])
        np.testing.assert_array_equal(aug[(5, 123)]["images"][cam], y["images"][cam])
    assert not np.array_equal(aug[(5, 124)]["images"]["front"], y["images"]["front"])
    np.testing.assert_array_equal(y["actions"], x["actions"])


def test_state_noise_blurs_the_state_only_and_is_seeded(stores):
    a, _ = stores
    plain = PooledDataset([a], horizon=H)
    noisy = PooledDataset([a], horizon=H, transforms=[StateNoise(0.5)])
    x, y = plain[(5, 123)], noisy[(5, 123)]
    assert 0.05 < np.abs(y["state"] - x["state"]).mean() < 2.0 and y["state"].dtype == np.float32
    np.testing.assert_array_equal(noisy[(5, 123)]["state"], y["state"])  # the sample's seed decides
    assert not np.array_equal(noisy[(5, 124)]["state"], y["state"])
    np.testing.assert_array_equal(y["actions"], x["actions"])
    np.testing.assert_array_equal(y["images"]["front"], x["images"]["front"])
    with pytest.raises(DataError, match="state noise must be >= 0"):
        StateNoise(-0.1)


def _recipe(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "mix.toml"
    p.write_text(text)
    return p


def test_recipe_loads_relative_paths_and_weights(stores):
    a, b = stores
    recipe = a.path.parent / "mix_rel.toml"  # "a.zarr" is relative to the recipe's folder
    recipe.write_text(f'horizon = 4\n[[datasets]]\npath = "a.zarr"\nweight = 1\n'
                      f'[[datasets]]\npath = "{b.path}"\nweight = 3.0\n')
    r = load_recipe(recipe)
    assert [e.path for e in r.entries] == [a.path.resolve(), b.path.resolve()]
    assert [e.format for e in r.entries] == ["zarr", "zarr"]
    assert r.weights == [0.25, 0.75] and r.horizon == 4
    loader = make_loader(r, batch_size=4, num_workers=0, num_samples=8)
    assert loader.dataset.horizon == 4 and [round(x, 2) for x in loader.batch_sampler.p] == [0.25, 0.75]
    assert r.imitate == [True, True] and loader.dataset.imitate == [True, True]
    recipe.write_text(recipe.read_text() + "imitate = false\n")  # panda's only dataset: grounding data
    assert load_recipe(recipe).imitate == [True, False]
    with pytest.raises(DataError, match=r"\['panda'\] have only grounding data"):
        make_loader(load_recipe(recipe), batch_size=4, num_workers=0, num_samples=8)


def test_first_episodes_is_a_dataset_of_its_own(stores, tmp_path):
    """A prefix of episodes: its frames end where episode n-1 ends (chunks pad there instead of
    running into episode n), its statistics are its own, and a recipe's `episodes` selects it."""
    a, _ = stores  # episodes of 7, 5 and 9 frames
    two = FirstEpisodes(a, 2)
    assert two.num_frames == 12 and two.episode_ends.tolist() == [7, 12] and two.robot == "so100"
    ds = PooledDataset([two], horizon=H, normalization="none")
    assert len(ds) == 12
    last = ds[11]  # the last frame of episode 1: the chunk repeats its action, never episode 2's
    np.testing.assert_array_equal(last["action_valid"], [True, False, False, False])
    np.testing.assert_array_equal(last["actions"], np.repeat(a.read("action", 11, 12), H, 0))
    own = compute_stats(a.read("observation.state", 0, 12))
    assert two.stats()["observation.state"] == own != a.stats()["observation.state"]
    with pytest.raises(IndexError, match="first 2 episodes"):
        two.read("action", 10, 13)
    with pytest.raises(DataError, match="holds 3 committed episodes, 4 were asked for"):
        FirstEpisodes(a, 4)
    recipe = _recipe(tmp_path, f'[[datasets]]\npath = "{a.path}"\nepisodes = 1\n')
    (source,) = load_recipe(recipe).open_sources()
    assert source.num_frames == 7 and len(PooledDataset([source], horizon=H)) == 7


@pytest.mark.parametrize("text, error, words", [
    ('[[datasets]]\npath = "nope.zarr"\nweight = 1\n', MissingDataset,
     ["mix.toml", "#1", "nope.zarr", "does not exist"]),
    ('[[datasets]]\npath = "{a}"\nweight = -1\n', RecipeError, ["mix.toml", "#1", "weight must be a positive"]),
    ('[[datasets]]\npath = "{a}"\nwieght = 1\n', RecipeError, ["mix.toml", "#1", "did you mean 'weight'"]),
    ('datasets = []\n', RecipeError, ["mix.toml", "[[datasets]]"]),
    ('[[datasets]]\npath = "{a}"\nimitate = "no"\n', RecipeError, ["mix.toml", "#1", "imitate must be true or false"]),
    ('[[datasets]]\npath = 3\n', RecipeError, ["mix.toml", "#1", "path must be"]),
    ('[[datasets]\n', RecipeError, ["mix.toml", "not valid TOML"]),
    ('[[datasets]]\npath = "{a}"\nepisodes = 0\n', RecipeError, ["mix.toml", "#1", "episodes must be a positive"]),
    ('normalisation = "quantile"\n[[datasets]]\npath = "{a}"\n', RecipeError, ["did you mean 'normalization'"]),
])
def test_recipe_errors_name_file_and_entry(tmp_path, stores, text, error, words):
    with pytest.raises(error) as info:
        load_recipe(_recipe(tmp_path, text.replace("{a}", str(stores[0].path))))
    assert isinstance(info.value, DataError)
    assert all(w in str(info.value) for w in words), str(info.value)


def test_recipe_with_a_corrupt_store_names_the_entry(tmp_path):
    (tmp_path / "broken.zarr").mkdir()
    (tmp_path / "broken.zarr" / "zarr.json").write_text("{not json")
    r = load_recipe(_recipe(tmp_path, '[[datasets]]\npath = "broken.zarr"\n'))
    with pytest.raises(DataError, match=r"mix.toml \[datasets #1 'broken.zarr'\]"):
        r.open_sources()


def test_example_recipe_is_valid():
    example = Path(__file__).resolve().parents[2] / "datasets" / "example_mixture.toml"
    try:
        recipe = load_recipe(example)
    except MissingDataset as e:  # its datasets are generated locally, not committed
        assert "example_mixture.toml" in str(e) and "#1" in str(e)
    else:
        assert len(recipe.entries) >= 2
