"""One writer per output folder (real processes), refusal of folders inside datasets, removal of marked folders only."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from ino.errors import InoError
from ino.utils.outputs import (
    LOCK_NAME,
    RECORD_NAME,
    claim_file,
    claim_folder,
    exclusive,
    mark_made,
    record_file,
    refuse_inside,
    remove_made,
    written_by_ino,
)
from support.processes import hold_folder


def test_a_second_writer_is_refused_at_once_and_a_dead_holders_lock_is_taken_over(tmp_path: Path) -> None:
    first = hold_folder(tmp_path)
    try:
        started = time.perf_counter()
        with pytest.raises(InoError, match=rf"in use by pid {first.pid} \(holder test\) since "), exclusive(tmp_path):
            pass
        assert time.perf_counter() - started < 1
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    assert (tmp_path / LOCK_NAME).exists()  # left behind by kill -9 ...
    with exclusive(tmp_path, "second"):  # ... and free: the kernel dropped the dead process's lock
        assert f"pid {os.getpid()} (second)" in (tmp_path / LOCK_NAME).read_text()
    assert not (tmp_path / LOCK_NAME).exists()  # a clean finish leaves nothing behind


def test_the_lock_is_reentrant_within_one_process(tmp_path: Path) -> None:
    with exclusive(tmp_path), exclusive(tmp_path / "."):
        assert (tmp_path / LOCK_NAME).exists()
    assert not (tmp_path / LOCK_NAME).exists()


def test_folders_inside_input_data_are_refused(tmp_path: Path) -> None:
    data = tmp_path / "DAVIS" / "Annotations"
    refuse_inside(tmp_path / "DAVIS" / "results", [data])
    for inside in (data, data / "480p" / "dog"):
        with pytest.raises(InoError, match="lies inside the input data folder"):
            refuse_inside(inside, [data])


def test_only_marked_folders_are_removed(tmp_path: Path) -> None:
    ours, theirs = mark_made(tmp_path / "ours"), tmp_path / "theirs"
    (ours / "a.png").write_bytes(b"x")
    theirs.mkdir()
    (theirs / "b.png").write_bytes(b"y")
    remove_made(ours)
    remove_made(tmp_path / "absent")
    assert not ours.exists()
    with pytest.raises(InoError, match="was not made by ino"):
        remove_made(theirs)
    assert (theirs / "b.png").read_bytes() == b"y"


def test_an_unwritable_place_is_one_message(tmp_path: Path) -> None:
    if os.geteuid() == 0:
        blocker = tmp_path / "file"
        blocker.write_text("")
        target = blocker / "sub"  # a file in the way fails even for root
    else:
        tmp_path.chmod(0o500)
        target = tmp_path / "sub"
    with pytest.raises(InoError, match="cannot create the output folder"), exclusive(target):
        pass


def test_a_file_is_replaced_only_when_ino_wrote_it_or_the_user_says_overwrite(tmp_path: Path) -> None:
    theirs = tmp_path / "overlay.mp4"
    theirs.write_bytes(b"user's video")
    with pytest.raises(InoError, match=r"overlay.mp4 exists and was not written by ino: .* --overwrite"):
        claim_file(theirs)
    assert claim_file(theirs, overwrite=True) == theirs
    assert claim_file(tmp_path / "absent.png") == tmp_path / "absent.png"
    with pytest.raises(InoError, match="is a folder"):
        claim_file(tmp_path, overwrite=True)

    ours = tmp_path / "contact_sheet.png"
    ours.write_bytes(b"ino's sheet")
    record_file(ours)
    assert written_by_ino(ours) and claim_file(ours) == ours
    ours.write_bytes(b"the user's own file, put there since")  # same name, other content: theirs again
    assert not written_by_ino(ours)
    with pytest.raises(InoError, match="was not written by ino"):
        claim_file(ours)

    marked = mark_made(tmp_path / "made")
    (marked / "any.png").write_bytes(b"x")
    assert written_by_ino(marked / "any.png")
    record_file(marked / "any.png")
    assert not (marked / RECORD_NAME).exists()  # a marked folder is ino's as a whole: nothing to record


def test_a_folder_is_claimed_only_when_absent_or_made_by_ino(tmp_path: Path) -> None:
    assert claim_folder(tmp_path / "absent") == tmp_path / "absent"
    made = mark_made(tmp_path / "made")
    assert claim_folder(made) == made and made.is_dir()  # claimed, not removed: that comes at the command's end
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    with pytest.raises(InoError, match="theirs exists and was not made by ino: move it away"):
        claim_folder(theirs)
