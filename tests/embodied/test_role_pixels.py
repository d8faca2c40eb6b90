"""Role-pixel labels (where the instruction's objects are in each camera) from episode to batch:
stored, read, shifted with their image by augmentation, collated per camera slot."""

import numpy as np
import pytest

from embodied.data import Episode, EpisodeStore
from embodied.data.collate import Collate
from embodied.data.loader import PooledDataset
from embodied.data.transforms import ImageAugment
from embodied.errors import DataError, InvalidEpisode

CAMS = {"front": (16, 20), "wrist": (16, 20)}


def _episode(t: int, seed: int, labelled: bool = True) -> Episode:
    """Each front image is dark with one bright pixel, and its label says where that pixel is."""
    rng = np.random.default_rng(seed)
    images = {c: np.full((t, h, w, 3), 10, np.uint8) for c, (h, w) in CAMS.items()}
    labels = np.full((t, 2, 2), np.nan, np.float32)
    for i in range(t):
        row, col = rng.integers(5, 11), rng.integers(5, 15)
        images["front"][i, row, col] = 250
        labels[i, 0] = [(col + 0.5) / 20 * 2 - 1, (row + 0.5) / 16 * 2 - 1]
    return Episode(state=rng.normal(size=(t, 3)).astype(np.float32), action=rng.normal(size=(t, 3)).astype(np.float32),
                   timestamp=np.arange(t, dtype=np.float32) / 10, images=images, task="push the red cube",
                   role_pixels={"front": labels} if labelled else {})


def _store(path, episodes) -> EpisodeStore:
    store = EpisodeStore.create(path, "so100", 10.0, 3, 3, CAMS)
    for ep in episodes:
        store.append(ep)
    return EpisodeStore.open(path)


def test_labels_round_trip_and_unlabelled_frames_read_nan(tmp_path):
    """An episode without labels before and after labelled ones: its frames read NaN, the
    labelled episode's frames read back exactly; only labelled cameras get an array."""
    eps = [_episode(4, 0, labelled=False), _episode(6, 1), _episode(3, 2, labelled=False)]
    store = _store(tmp_path / "s.zarr", eps)
    assert store.role_pixel_cameras == ["front"] and store.num_frames == 13
    np.testing.assert_array_equal(store.episode(1).role_pixels["front"], eps[1].role_pixels["front"])
    assert np.isnan(store.episode(0).role_pixels["front"]).all()
    assert np.isnan(store.episode(2).role_pixels["front"]).all()
    assert "wrist" not in store.episode(1).role_pixels


def test_malformed_labels_are_refused_before_anything_is_written(tmp_path):
    _store(tmp_path / "s.zarr", [_episode(4, 0)])
    store = EpisodeStore.open(tmp_path / "s.zarr", "a")
    bad = _episode(5, 1)
    bad.role_pixels["front"] = bad.role_pixels["front"][:, :1]
    with pytest.raises(InvalidEpisode, match="label.role_pixels.front must be float"):
        store.append(bad)
    other = _episode(5, 2)
    other.role_pixels = {"top": other.role_pixels["front"]}
    with pytest.raises(InvalidEpisode, match="no images of"):
        store.append(other)
    again = EpisodeStore.open(tmp_path / "s.zarr")
    assert again.num_episodes == 1 and again.num_frames == 4


def test_augmentation_shifts_labels_with_their_image(tmp_path):
    """After a random shift, the label still points at the bright pixel, for many seeds."""
    store = _store(tmp_path / "s.zarr", [_episode(8, 0)])
    dataset = PooledDataset([store], horizon=2, augment=ImageAugment(shift_px=3, brightness=0.0, contrast=0.0))
    moved = 0
    for seed in range(20):
        plain = dataset.raw(seed % 8)
        sample = dataset[(seed % 8, seed)]
        xy = sample["role_pixels"]["front"][0]
        col, row = int((xy[0] + 1) / 2 * 20), int((xy[1] + 1) / 2 * 16)
        assert sample["images"]["front"][row, col, 0] == 250
        moved += not np.allclose(xy, plain["role_pixels"]["front"][0])
        # the recorded shift is how far the label (and the content) moved
        np.testing.assert_allclose(sample["image_shift"]["front"], xy - plain["role_pixels"]["front"][0], atol=1e-6)
        assert np.isnan(sample["role_pixels"]["front"][1]).all()  # unknown stays unknown
    assert moved >= 10
    unshifted = PooledDataset([store], horizon=2, augment=ImageAugment(shift_px=0))
    assert "image_shift" not in unshifted[(0, 1)]


def test_collate_puts_labels_in_camera_slots(tmp_path):
    labelled = PooledDataset([_store(tmp_path / "a.zarr", [_episode(5, 0)])], horizon=2)
    plain = PooledDataset([_store(tmp_path / "b.zarr", [_episode(5, 1, labelled=False)])], horizon=2)
    assert "role_pixels" not in plain.raw(0)
    batch = Collate(("wrist", "front"))([labelled.raw(2), plain.raw(1)])
    assert batch["role_pixels"].shape == (2, 2, 2, 2)
    np.testing.assert_array_equal(batch["role_pixels"][0, 1].numpy(), labelled.raw(2)["role_pixels"]["front"])
    assert batch["role_pixels"][0, 0].isnan().all() and batch["role_pixels"][1].isnan().all()
    assert "role_pixels" not in Collate(("wrist", "front"))([plain.raw(0), plain.raw(1)])
    assert "image_shift" not in batch


def test_collate_puts_image_shifts_in_camera_slots(tmp_path):
    dataset = PooledDataset([_store(tmp_path / "a.zarr", [_episode(5, 0)])], horizon=2, augment=ImageAugment())
    shifted, plain = dataset[(2, 7)], dataset.raw(1)
    batch = Collate(("wrist", "front"))([shifted, plain])
    assert batch["image_shift"].shape == (2, 2, 2)
    for slot, cam in enumerate(("wrist", "front")):
        np.testing.assert_array_equal(batch["image_shift"][0, slot].numpy(), shifted["image_shift"][cam])
    assert (batch["image_shift"][1] == 0).all()  # not augmented: not moved


def test_grounding_sources_have_no_valid_actions_and_no_say_in_statistics(tmp_path):
    demos = _store(tmp_path / "a.zarr", [_episode(5, 0)])
    scenes = _store(tmp_path / "b.zarr", [_episode(6, 1)])
    dataset = PooledDataset([demos, scenes], horizon=3, imitate=[True, False])
    assert dataset.raw(1)["action_valid"].all() and not dataset.raw(5 + 2)["action_valid"].any()
    assert "role_pixels" in dataset.raw(5 + 2)
    alone = PooledDataset([demos], horizon=3)
    np.testing.assert_array_equal(dataset.norm_stats["so100"]["actions"].mean, alone.norm_stats["so100"]["actions"].mean)
    with pytest.raises(DataError, match="only grounding data"):
        PooledDataset([scenes], horizon=3, imitate=[False])


def test_merge_keeps_labels(tmp_path):
    from embodied.data.tools import merge

    a = _store(tmp_path / "a.zarr", [_episode(4, 0)])
    b = _store(tmp_path / "b.zarr", [_episode(3, 1, labelled=False), _episode(5, 2)])
    merged = merge(tmp_path / "m.zarr", [a.path, b.path])
    assert merged.role_pixel_cameras == ["front"] and merged.num_episodes == 3
    np.testing.assert_array_equal(merged.episode(2).role_pixels["front"], b.episode(1).role_pixels["front"])
    assert np.isnan(merged.episode(1).role_pixels["front"]).all()
