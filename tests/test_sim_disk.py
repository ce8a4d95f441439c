"""The simulated disk: durability only through sync, crashes, torn appends, full disk, slow fsync."""

from __future__ import annotations

import errno
import random

import pytest

from syncobj.io_sim.disk import SimDisk


def test_synced_data_survives_a_crash_and_unsynced_data_does_not():
    d = SimDisk("n1")
    d.append("j", b"one")
    d.sync()
    d.append("j", b"two")
    assert d.read("j") == b"onetwo"
    d.crash()
    assert d.read("j") == b"one"


def test_a_file_never_synced_vanishes_in_a_crash():
    d = SimDisk()
    d.write("f", b"data")
    d.crash()
    assert d.read("f") is None and d.list() == []


def test_a_whole_file_write_is_atomic_old_or_new_never_a_mix():
    d = SimDisk()
    d.write("f", b"old")
    d.sync()
    d.write("f", b"new contents")
    d.crash(random.Random(1))  # a tear never applies to whole-file writes
    assert d.read("f") == b"old"
    d.write("f", b"new contents")
    d.sync()
    d.crash()
    assert d.read("f") == b"new contents"


def test_a_torn_crash_keeps_earlier_appends_and_a_strict_prefix_of_the_last():
    for seed in range(20):
        d = SimDisk()
        d.append("j", b"durable|")
        d.sync()
        d.append("j", b"first|")
        d.append("j", b"second-append")
        assert d.crash(random.Random(seed)) == "j"
        data = d.read("j")
        assert data.startswith(b"durable|first|")
        assert (b"durable|first|second-append").startswith(data) and data != b"durable|first|second-append"
        d.append("j", b"x")  # the torn image is now the durable one
        d.crash()
        assert d.read("j") == data


def test_a_deleted_file_comes_back_if_the_delete_was_not_synced():
    d = SimDisk()
    d.write("f", b"keep")
    d.sync()
    d.delete("f")
    assert d.read("f") is None
    d.crash()
    assert d.read("f") == b"keep"
    d.delete("f")
    d.sync()
    d.crash()
    assert d.read("f") is None


def test_a_full_disk_refuses_writes_and_changes_nothing():
    d = SimDisk("n3")
    d.append("j", b"abc")
    d.full = True
    with pytest.raises(OSError) as info:
        d.append("j", b"more")
    assert info.value.errno == errno.ENOSPC and "n3" in str(info.value)
    with pytest.raises(OSError):
        d.write("j", b"replace")
    assert d.read("j") == b"abc"


def test_a_slow_fsync_reports_its_delay_only_when_there_was_something_to_sync():
    d = SimDisk()
    stalls = []
    d.on_slow_sync = stalls.append
    d.fsync_delay = 0.02
    d.sync()
    assert stalls == []
    d.append("j", b"x")
    d.sync()
    assert stalls == [0.02]


def test_bad_arguments_name_the_problem():
    d = SimDisk()
    with pytest.raises(TypeError, match="must be bytes"):
        d.append("j", "text")
    with pytest.raises(ValueError, match="file name"):
        d.write("", b"x")
