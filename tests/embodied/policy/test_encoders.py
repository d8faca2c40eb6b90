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


def test_token_embeddings_padded_truncated_and_cached(tmp_path, language):
    texts = ["pick up the red cube", "push the red cube to the blue zone"]  # 7 and 10 tokens with [CLS], [SEP]
    tokens, mask = language.tokens(texts, 8)
    assert tokens.shape == (2, 8, 384) and tokens.dtype == np.float32 and mask.dtype == bool
    assert mask.tolist() == [[True] * 7 + [False], [True] * 8]
    assert not tokens[0, 7].any() and np.abs(tokens[mask]).sum(-1).min() > 0  # padding is zeros
    longer, longer_mask = language.tokens(texts, 16)
    assert longer_mask.sum(1).tolist() == [7, 10]
    np.testing.assert_allclose(longer[:, :8], tokens, atol=1e-5)  # truncation keeps the first tokens
    encoded = language.encoded
    again, again_mask = language.tokens(texts[::-1], 8)
    np.testing.assert_array_equal(again, tokens[::-1])
    np.testing.assert_array_equal(again_mask, mask[::-1])
    assert language.encoded == encoded  # served from memory
    (tmp_path / "cache").mkdir()
    for t in texts:  # one file per instruction and length, apart from the sentence embedding's
        name = f"{language._key(t)}.tokens8.npy"
        (tmp_path / "cache" / name).write_bytes((language.cache_dir / name).read_bytes())
    fresh = LanguageEncoder(cache_dir=tmp_path / "cache")
    np.testing.assert_array_equal(fresh.tokens(texts, 8)[0], tokens)
    assert fresh.encoded == 0 and fresh._model is None  # served from disk, model never loaded


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(a.ravel() @ b.ravel() / (np.linalg.norm(a) * np.linalg.norm(b)))


def test_token_embeddings_tell_apart_what_the_sentence_embedding_blurs(language):
    """Who goes where: the pooled embeddings of the two instructions are nearly one (cosine
    0.993, distance 0.007); position by position, their token embeddings differ 8x more
    (flattened cosine 0.941, distance 0.059), most at the colour words (cosine 0.61, 0.68)."""
    texts = ["push the red cube to the blue zone", "push the blue cube to the red zone"]
    sentence = language(texts)
    tokens, mask = language.tokens(texts, 16)
    assert mask.sum(1).tolist() == [10, 10]  # [CLS] push the red cube to the blue zone [SEP]
    sentence_distance = 1.0 - _cosine(sentence[0], sentence[1])
    token_distance = 1.0 - _cosine(tokens[0], tokens[1])
    assert sentence_distance < 0.015
    assert token_distance > 4 * sentence_distance
    assert max(_cosine(tokens[0, i], tokens[1, i]) for i in (3, 7)) < 0.8  # red <-> blue, blue <-> red


@pytest.mark.parametrize("bad", [[""], ["   "], [None], [3], "pick up"])
def test_instructions_that_cannot_be_embedded(language, bad):
    with pytest.raises(InvalidInput):
        language(bad)
    with pytest.raises(InvalidInput):
        language.tokens(bad, 8)


@pytest.mark.parametrize("length", [0, -1, 2.0, True])
def test_token_length_must_be_positive(language, length):
    with pytest.raises(InvalidInput, match="positive length"):
        language.tokens(["pick up the red cube"], length)
