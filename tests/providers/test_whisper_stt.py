"""The embedded recogniser on real speech (two different synthetic voices)."""

import re

import numpy as np
import pytest

from tests.speech import espeak_speech, piper_speech, silence
from voco.providers.whisper_stt import looks_degenerate


def words(text: str) -> list[str]:
    return re.findall(r"[a-z]+", text.lower())


@pytest.mark.parametrize(
    ("voice", "text"),
    [
        (piper_speech, "Open the readme file please."),
        (piper_speech, "List the files in the source directory."),
        (espeak_speech, "Run the tests."),
        (espeak_speech, "Search for token."),
        (piper_speech, "Stop."),
        (piper_speech, "What does the main function do, and why does the build fail?"),
    ],
)
async def test_transcribes_real_speech(whisper, voice, text):
    pcm = np.concatenate([silence(200), voice(text), silence(300)])
    got = await whisper.transcribe(pcm.astype(np.float32) / 32768)
    expected = words(text)
    hits = sum(w in words(got) for w in expected)
    assert hits >= max(1, len(expected) - 1), got
    assert not looks_degenerate(got)


async def test_stream_buffers_and_preview_matches_finish(whisper):
    stream = await whisper.open_stream()
    pcm = np.concatenate([silence(100), piper_speech("Git status."), silence(200)])
    await stream.push(pcm.tobytes())
    preview = await stream.preview()
    final = await stream.finish()
    assert preview == final and "status" in final.lower()


async def test_silence_and_tiny_input_give_empty_text(whisper):
    stream = await whisper.open_stream()
    await stream.push(silence(50).tobytes())
    assert await stream.finish() == ""


@pytest.mark.parametrize(
    ("text", "bad"),
    [
        ("Run the tests. Run the tests. Run the tests. Run the tests.", True),
        ("search for token search for token search for token", True),
        ("Stop. Stop. Stop. Stop.", True),
        ("Open the read me. Open the read me.", True),
        ("I said no, no, I said no.", False),
        ("Run the tests, then run the tests again.", False),
        ("Open the readme file, please.", False),
        ("What does main dot py do, and why is the build failing on step two?", False),
        ("no", False),
    ],
)
def test_degenerate_output_detection(text, bad):
    assert looks_degenerate(text) is bad


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("Open the read me. Open the read me.", "Open the read me."),
        (" Run the tests. Run the tests. Run the tests. Run the", " Run the tests."),
        ("Stop. Stop. Stop. Stop.", "Stop."),
        ("search for token search for token search for", "search for token"),
        ("Go on! Go on! Go", "Go on!"),
        ("Go on, go on.", "Go on, go on."),
        ("List the files in source.", "List the files in source."),
        ("I said no, no, I said no.", "I said no, no, I said no."),
        ("Run the tests, then run the tests again.", "Run the tests, then run the tests again."),
    ],
)
def test_loops_are_cut_to_their_first_pass(raw, clean):
    from voco.providers.whisper_stt import collapse_loops

    assert collapse_loops(raw) == clean
    assert not looks_degenerate(collapse_loops(raw))


VOCABULARY = ["README.md", "cli.py", "mcp_bridge.py", "pyproject.toml", "Dockerfile", "main.py"]


@pytest.fixture(scope="module")
def whisper_tiny():
    import asyncio

    from voco.providers.whisper_stt import WhisperSTT

    stt = WhisperSTT(model="tiny")
    asyncio.run(stt.warmup())
    return stt


@pytest.fixture(scope="module")
def whisper_base():
    import asyncio

    from voco.providers.whisper_stt import WhisperSTT

    stt = WhisperSTT(model="base")
    asyncio.run(stt.warmup())
    return stt


NAMED = [
    ("open pyproject dot toml", "pyproject.toml"),
    ("show me the imports in cli dot py", "cli.py"),
    ("open the pyproject dot toml file", "pyproject.toml"),
    ("what is in pyproject dot toml", "pyproject.toml"),
    ("read pyproject dot toml", "pyproject.toml"),
]


async def test_base_with_the_project_vocabulary_hears_names_tiny_does_not(
    whisper_base, whisper_tiny
):
    """Counted over five commands, not asserted per command: which synthesis
    a decode gets right moves with the CPU's arithmetic (CTranslate2 picks its
    kernels by instruction set: on an AMD EPYC base heard "Open
    vpregnect.toml." where an Intel machine heard the name), while the effect
    itself — the vocabulary turns names base cannot spell into the files'
    names, and tiny hears none — holds on both."""

    clips = [
        (np.concatenate([silence(200), espeak_speech(said), silence(300)]), name)
        for said, name in NAMED
    ]

    async def heard(vocabulary: list[str]) -> int:
        n = 0
        for pcm, name in clips:
            stream = await whisper_base.open_stream(vocabulary=vocabulary)
            await stream.push(pcm.tobytes())
            n += name in await stream.finish()
        return n

    tiny = 0
    for pcm, name in clips:
        tiny += name in await whisper_tiny.transcribe(pcm.astype(np.float32) / 32768)
    with_names, without = await heard(VOCABULARY), await heard([])
    assert with_names >= 2 and with_names >= without + 2, (with_names, without)
    assert tiny < with_names, (tiny, with_names)


def test_vocabulary_prompt_is_capped_in_tokens_context_then_best_names():
    import asyncio

    from voco.providers.whisper_stt import CODING_CONTEXT, MAX_PROMPT_TOKENS, WhisperSTT

    whisper = WhisperSTT(model="tiny", context=CODING_CONTEXT)  # the context is opt-in
    asyncio.run(whisper.warmup())
    names = [f"module_{i}.py" for i in range(200)]
    ids = whisper.prompt_tokens(names)
    assert 0 < len(ids) <= MAX_PROMPT_TOKENS
    text = whisper._tokenizer.decode(ids)
    assert text.startswith(f" {CODING_CONTEXT} module_0.py, module_1.py")
    assert "module_199" not in text
    # no vocabulary: the coding context alone (it names no project file)
    context = whisper._tokenizer.decode(whisper.prompt_tokens([]))
    assert (
        context == f" {CODING_CONTEXT}" == whisper._tokenizer.decode(whisper.prompt_tokens([" "]))
    )
    asyncio.run(whisper.aclose())


def test_an_empty_context_gives_an_empty_prompt_without_vocabulary():
    import asyncio

    from voco.providers.whisper_stt import WhisperSTT

    stt = WhisperSTT(model="tiny", context="")
    asyncio.run(stt.warmup())
    assert stt.prompt_tokens([]) == []
    assert stt._tokenizer.decode(stt.prompt_tokens(["main.py"])) == " main.py."
    asyncio.run(stt.aclose())


async def test_a_long_prompt_leaves_room_for_the_words(whisper):
    """CTranslate2 counts the prompt in max_length: a full prompt must not eat the reply."""
    names = [f"name_number_{i}.py" for i in range(200)]
    pcm = np.concatenate([silence(200), espeak_speech("Run the tests."), silence(300)])
    got = await whisper.transcribe(pcm.astype(np.float32) / 32768, whisper.prompt_tokens(names))
    assert "test" in got.lower()


def test_models_are_chosen_by_name():
    from voco.providers.base import ProviderError
    from voco.providers.registry import make_stt

    assert make_stt("whisper").model == "base"  # the default (see registry.py)
    assert make_stt("whisper:base").model == "base"
    assert make_stt("whisper:tiny").model == "tiny"
    with pytest.raises(ProviderError, match="unknown STT"):
        make_stt("whisper:large")


async def test_batched_decodes_equal_the_single_decodes(whisper):
    """Sessions' utterances decoded as one CTranslate2 batch give each the
    transcript its own decode gives — with no vocabulary, and with different
    vocabularies of one prompt length (the batch key)."""

    def utterance(voice, text):
        pcm = np.concatenate([silence(200), voice(text), silence(300)])
        return pcm.astype(np.float32) / 32768

    plain = [
        (utterance(piper_speech, "Open the readme file please."), []),
        (utterance(espeak_speech, "Run the tests."), []),
        (utterance(piper_speech, "Git status."), []),
        (utterance(espeak_speech, "Search for token."), []),
    ]
    a, b = whisper.prompt_tokens(["main.py"]), whisper.prompt_tokens(["setup.py"])
    assert len(a) == len(b) and a != b
    vocab = [
        (utterance(piper_speech, "Open main dot py."), a),
        (utterance(espeak_speech, "Show me setup dot py."), b),
    ]
    for items in (plain, vocab):
        assert len({whisper.batch_key(len(x), p) for x, p in items}) == 1
        single = [whisper._decode(x, p) for x, p in items]
        assert whisper._decode_batch(items) == single
        assert all(single)  # real transcripts, not empty strings


async def test_decodes_of_different_keys_are_never_one_batch(whisper):
    short = np.zeros(16000, np.float32)
    assert whisper.batch_key(len(short), []) != whisper.batch_key(len(short), [1, 2, 3])
    assert whisper.batch_key(12 * 16000, []) != whisper.batch_key(len(short), [])
    assert whisper.batch_key(31 * 16000, []) is None  # long dictation: the library's windowing
    with pytest.raises(ValueError, match="one batch key"):
        whisper._decode_batch([(short, []), (short, [1, 2, 3])])
