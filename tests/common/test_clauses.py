"""Where reply text is cut (``voco.common.clauses``): the speaker's trimmed TTS
units and the command mode's exact deltas, one splitter."""

from voco.common.clauses import ClauseSplitter, split_reply


def feed_all(pieces, **kw):
    s = ClauseSplitter(**kw)
    out = []
    for p in pieces:
        out += s.feed(p)
    return out + s.flush()


def test_sentences_are_cut_as_they_complete():
    s = ClauseSplitter()
    assert s.feed("Hello there. How") == ["Hello there."]
    assert s.feed(" are you? Fine") == ["How are you?"]
    assert s.flush() == ["Fine"]


def test_short_comma_clause_waits_long_one_is_cut():
    assert feed_all(["Yes, ", "that works."]) == ["Yes, that works."]  # 3 chars: too short
    text = "The engine listens to your voice, then it answers."
    assert feed_all([text]) == ["The engine listens to your voice,", "then it answers."]
    later = "Done. Well, okay, then it works, as you said."
    assert feed_all([later]) == ["Done.", "Well, okay, then it works,", "as you said."]


def test_first_clause_may_end_early_to_start_speaking_sooner():
    assert feed_all(["Sure, I can help with that."]) == ["Sure,", "I can help with that."]


def test_token_by_token_equals_whole():
    text = "Okay. I found three files: main dot py, setup dot cfg, and the readme. Done!"
    whole = feed_all([text])
    by_char = feed_all(list(text))
    assert whole == by_char
    assert " ".join(whole) == text


def test_no_punctuation_is_cut_at_a_space():
    words = "word " * 100
    out = feed_all([words], max_chars=50)
    assert all(len(c) <= 50 for c in out)
    assert " ".join(out).split() == words.split()


def test_decimal_points_do_not_cut():
    assert feed_all(["Version 3.11 is installed."]) == ["Version 3.11 is installed."]


def test_split_reply_joins_back_exactly():
    text = (
        "Creating files needs a language model, and none is configured.  Set the key and "
        "run it, or use another server with a long enough clause to split. Done! "
    )
    chunks = split_reply(text)
    assert "".join(chunks) == text
    # cut where the speaker cuts, only the spacing kept
    assert [c.strip() for c in chunks] == feed_all([text])
    assert len(chunks) >= 4
    assert split_reply("Okay.") == ["Okay."]
    assert split_reply("README dot md has 1.5 lines.") == ["README dot md has 1.5 lines."]
    assert split_reply("") == [""]


def test_kept_spacing_streams_like_whole():
    text = "Sure, here it is.   Then: the rest, which is long enough to cut, ends here."
    whole = feed_all([text], keep_spacing=True)
    assert whole == feed_all(list(text), keep_spacing=True)
    assert "".join(whole) == text
    assert "".join(feed_all([" " * 300], keep_spacing=True, max_chars=50)) == " " * 300
