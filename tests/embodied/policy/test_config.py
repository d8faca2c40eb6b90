from dataclasses import replace

import pytest

from embodied.errors import ConfigError
from embodied.policy.config import PRESETS, PolicyConfig, available, preset


@pytest.mark.parametrize("name", available())
def test_presets_round_trip(name):
    cfg = preset(name)
    assert cfg.name == name and PolicyConfig.from_dict(cfg.to_dict()) == cfg


def test_default_and_overrides():
    assert preset().name == "small"
    assert preset("tiny", head="flow", chunk=8).chunk == 8
    assert len({p.name for p in PRESETS}) == len(PRESETS)


def test_small_pretrained_is_small_over_the_frozen_backbone():
    """The two small presets differ only in what the FiLM layers read (pixels or backbone
    features), so comparisons between them measure that alone."""
    pretrained, small = preset("small_pretrained"), preset("small")
    assert (pretrained.image_backbone, pretrained.backbone_stride, pretrained.image_channels) == (
        "efficientnet_lite0", 4, (64, 96))
    assert replace(pretrained, name="small", image_backbone="none", backbone_stride=small.backbone_stride,
                   image_channels=small.image_channels) == small


def test_unknown_preset_suggests():
    with pytest.raises(ConfigError, match="did you mean 'small'"):
        preset("smal")
    with pytest.raises(ConfigError, match="unknown policy config fields"):
        preset("tiny", widht=3)


def test_language_defaults_keep_configs_saved_without_the_fields():
    assert [(p.name, p.language_tokens, p.film_queries) for p in PRESETS] == [
        ("tiny", 8, 1), ("small", 16, 2), ("small_pretrained", 16, 2), ("base", 16, 4)]
    saved = preset("small").to_dict()
    del saved["language_tokens"], saved["film_queries"]  # a config.json written before token-level language
    loaded = PolicyConfig.from_dict(saved)
    assert (loaded.language_tokens, loaded.film_queries) == (0, 0)


def test_default_presets_ground_the_instruction():
    """`small` and `base` train keypoints 0 and 1 onto the named objects and read them in the
    state stems (README: without the grounding loss no policy found the named cube beyond
    chance on new scenes)."""
    for name in ("small", "base"):
        cfg = preset(name)
        assert cfg.grounding_weight > 0 and cfg.image_keypoints >= 2 and cfg.grounded_state
    with pytest.raises(ConfigError, match="set image_keypoints >= 2 or grounding_weight=0"):
        preset("small", image_keypoints=0)


def test_film_queries_need_language_tokens():
    with pytest.raises(ConfigError, match="film_queries=2 attends over language tokens; set language_tokens > 0"):
        preset("small", language_tokens=0)
    assert preset("small", language_tokens=0, film_queries=0).film_queries == 0


@pytest.mark.parametrize("bad", [dict(width=30, heads=4), dict(head="mse"), dict(chunk=0), dict(dropout=1.0),
                                 dict(image_channels=()), dict(depth=True), dict(language_tokens=-1),
                                 dict(language_tokens=True), dict(language_tokens=2.0),
                                 dict(film_queries=-1), dict(language_dropout=1.0), dict(language_dropout=-0.1),
                                 dict(language_tokens=0, film_queries=0, language_dropout=0.2)])
def test_invalid_config(bad):
    with pytest.raises(ConfigError):
        PolicyConfig(**bad)
