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


def test_unknown_preset_suggests():
    with pytest.raises(ConfigError, match="did you mean 'small'"):
        preset("smal")
    with pytest.raises(ConfigError, match="unknown policy config fields"):
        preset("tiny", widht=3)


def test_language_tokens_default_keeps_configs_saved_without_the_field():
    assert [(p.name, p.language_tokens) for p in PRESETS] == [("tiny", 8), ("small", 16), ("base", 16)]
    saved = preset("small").to_dict()
    del saved["language_tokens"]  # a config.json written before token-level language existed
    assert PolicyConfig.from_dict(saved).language_tokens == 0


@pytest.mark.parametrize("bad", [dict(width=30, heads=4), dict(head="mse"), dict(chunk=0), dict(dropout=1.0),
                                 dict(image_channels=()), dict(depth=True), dict(language_tokens=-1),
                                 dict(language_tokens=True), dict(language_tokens=2.0)])
def test_invalid_config(bad):
    with pytest.raises(ConfigError):
        PolicyConfig(**bad)
