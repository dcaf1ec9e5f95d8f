import os
import subprocess

from voco.common.processes import pid_alive
from voco.common.safe_text import escape


def test_escape_is_visible_and_keeps_only_what_it_is_told():
    assert escape("a\x1b[2Jb\\") == "a\\x1b[2Jb\\\\"
    assert escape("one\ntwo\u202e", keep=frozenset("\n")) == "one\ntwo\\u202e"
    assert escape("plain café 🎉") == "plain café 🎉"


def test_pid_alive_tells_this_process_from_a_finished_one():
    assert pid_alive(os.getpid())
    child = subprocess.Popen(["true"])
    child.wait()  # reaped: the pid names no process now
    assert not pid_alive(child.pid)
