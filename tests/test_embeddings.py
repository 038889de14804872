from __future__ import annotations

import asyncio

import numpy as np
import pytest

from routing.config import LocalEmbedding, OpenAIEmbedding
from routing.embeddings import make_embedder
from routing.embeddings.local import LocalEmbedder
from routing.errors import UpstreamError, UpstreamUnconfigured
from routing.offline.learning.embedded import PromptEmbeddings
from routing.resources import minilm_dir

PROMPTS = [
    "What is the capital of France?",
    "Write a haiku about autumn leaves.",
    "Prove that the square root of two is irrational. " * 40,
    "",
]


@pytest.fixture(scope="module")
def minilm() -> LocalEmbedder:
    return LocalEmbedder(LocalEmbedding(precision="float32"))


@pytest.fixture(scope="module")
def reference() -> np.ndarray:
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(minilm_dir()), device="cpu").encode(PROMPTS, normalize_embeddings=True)


def test_minilm_matches_sentence_transformers(minilm: LocalEmbedder, reference: np.ndarray) -> None:
    ours = minilm.encode(PROMPTS)
    assert ours.shape == (4, 384) and ours.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(ours, reference, atol=2e-5)


def test_reduced_precision_keeps_the_vectors(reference: np.ndarray) -> None:
    """``precision: auto`` (bfloat16 on a CPU with native support) moves the vectors only slightly."""
    ours = LocalEmbedder(LocalEmbedding(precision="auto")).encode(PROMPTS)
    np.testing.assert_allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)
    assert (np.sum(ours * reference, axis=1) > 0.999).all()


def test_minilm_batches_keep_input_order(minilm: LocalEmbedder) -> None:
    texts = [f"question number {i}: " + "why? " * (i % 7) for i in range(20)]
    np.testing.assert_allclose(minilm.encode(texts, batch_size=3), minilm.encode(texts), atol=1e-5)
    assert asyncio.run(minilm.embed([])).shape == (0, 384)


def test_openai_embeddings_backend(strong) -> None:  # type: ignore[no-untyped-def]
    async def scenario() -> None:
        embedder = make_embedder(OpenAIEmbedding(backend="openai", model="embed-small", base_url=strong.base_url))
        vectors = await embedder.embed(["a", "b", "a"])
        assert vectors.shape == (3, 384)
        np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
        assert np.allclose(vectors[0], vectors[2]) and not np.allclose(vectors[0], vectors[1])
        (sent,) = strong.requests()
        assert sent["body"]["model"] == "embed-small" and sent["body"]["input"] == ["a", "b", "a"]

        strong.behave("status", status=500)
        with pytest.raises(UpstreamError, match="embed-small"):
            await embedder.embed(["a"])

    asyncio.run(scenario())


def test_openai_embeddings_without_endpoint_say_which_variable_to_set() -> None:
    config = OpenAIEmbedding(backend="openai", base_url_env="EMBEDDINGS_URL").resolve_env({})
    with pytest.raises(UpstreamUnconfigured, match="EMBEDDINGS_URL"):
        asyncio.run(make_embedder(config).embed(["a"]))


def test_local_encoder_loads_from_an_explicit_path(minilm: LocalEmbedder) -> None:
    # The same code path takes a hub id (e.g. 'sentence-transformers/all-MiniLM-L6-v2') when online.
    explicit = LocalEmbedder(LocalEmbedding(model_path=str(minilm_dir()), max_length=32, precision="float32"))
    assert explicit.model_id == str(minilm_dir())
    short = ["a short prompt"]
    np.testing.assert_allclose(explicit.encode(short), minilm.encode(short), atol=1e-5)


def test_the_learner_embeds_a_prompt_once_while_its_rounds_read_it(strong) -> None:  # type: ignore[no-untyped-def]
    config = OpenAIEmbedding(backend="openai", model="embed-small", base_url=strong.base_url)
    embeddings, direct, loop = PromptEmbeddings(config), make_embedder(config), asyncio.Runner()

    def sent() -> list[str]:
        texts = [text for request in strong.requests() for text in request["body"]["input"]]
        strong.reset()
        return texts

    first = embeddings(["a", "b", "a", "c"])
    assert sent() == ["a", "b", "c"]
    np.testing.assert_allclose(first, loop.run(direct.embed(["a", "b", "a", "c"])), atol=1e-6)
    sent()
    second = embeddings(["d", "b"])
    assert sent() == ["d"]
    np.testing.assert_allclose(second, np.stack([loop.run(direct.embed(["d"]))[0], first[1]]))
    sent()

    embeddings.next_round()
    assert embeddings(["a"]).shape == (1, 384) and sent() == []  # read last round: kept
    embeddings.next_round()
    embeddings(["b"])
    assert sent() == ["b"]  # not read in the round before: dropped, embedded again
    assert PromptEmbeddings(None)(["a"]) is None and embeddings([]) is None
