import numpy as np
import pytest

from embodied.errors import InvalidInput
from embodied.policy import LanguageEncoder


def test_embeddings_cached_in_memory_and_on_disk(tmp_path, language):
    texts = ["pick up the red cube", "pick up the blue cube"]
    reference = language(texts)
    assert reference.shape == (2, 384) and reference.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(reference, axis=1), 1.0, rtol=1e-4)
    assert not np.allclose(reference[0], reference[1])
    encoded = language.encoded
    np.testing.assert_array_equal(language(texts[::-1] * 2), reference[[1, 0, 1, 0]])
    assert language.encoded == encoded  # served from memory
    (tmp_path / "cache").mkdir()
    for t in texts:  # the session encoder wrote these when it encoded them
        name = f"{language._key(t)}.npy"
        (tmp_path / "cache" / name).write_bytes((language.cache_dir / name).read_bytes())
    fresh = LanguageEncoder(cache_dir=tmp_path / "cache")
    np.testing.assert_array_equal(fresh(texts), reference)
    assert fresh.encoded == 0 and fresh._model is None  # served from disk, model never loaded


@pytest.mark.parametrize("bad", [[""], ["   "], [None], [3], "pick up"])
def test_instructions_that_cannot_be_embedded(language, bad):
    with pytest.raises(InvalidInput):
        language(bad)
