from voco.engine.playout import ResponseAudio


def build():
    r = ResponseAudio("r1")
    r.begin_clause("Hello there.")  # 0..1000
    r.add_audio(1000)
    r.begin_clause("This is the second clause of four words.")  # 1000..3000
    r.add_audio(3000)
    r.finish()
    return r


def test_heard_text_whole_and_partial_clauses():
    r = build()
    assert r.heard_text(0) == ""
    assert r.heard_text(1000) == "Hello there."
    assert r.heard_text(2000) == "Hello there. This is the second"  # 4 of 8 words
    assert r.heard_text(5000) == "Hello there. This is the second clause of four words."


def test_heard_ms_prefers_client_report_but_never_exceeds_sent():
    r = build()
    r.started_at = 100.0
    assert r.heard_ms(now=101.5) == 1500  # estimate: elapsed real time
    assert r.heard_ms(now=110.0) == 3000  # capped at audio sent
    r.played_ms = 700
    assert r.heard_ms(now=110.0) == 700
    r.played_ms = 99999
    assert r.heard_ms(now=110.0) == 3000


def test_is_playing_until_played_out():
    r = ResponseAudio("r")
    assert not r.is_playing(0.0)  # before audio.start
    r.started_at = 10.0
    r.begin_clause("x")
    r.add_audio(2000)
    assert r.is_playing(50.0)  # not ended: still producing
    r.finish()
    assert r.is_playing(11.9)
    assert not r.is_playing(12.2)  # 2 s of audio + grace elapsed
    r.played_ms = 2000
    assert not r.is_playing(10.5)  # client said it finished
    r2 = ResponseAudio("h", started_at=1.0)
    r2.halted = True
    assert not r2.is_playing(1.1)
