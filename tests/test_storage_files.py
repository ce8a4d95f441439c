"""The real-file backend keeps the backend contract the journal relies on."""

from __future__ import annotations

from pathlib import Path

import pytest

from syncobj.io_tcp.files import FileBackend


@pytest.mark.parametrize("fsync", [True, False])
def test_append_write_truncate_delete_and_list(tmp_path: Path, fsync: bool) -> None:
    with FileBackend(tmp_path, fsync=fsync) as b:
        assert b.read("j") is None and b.list() == []
        b.append("j", b"abc")
        b.append("j", b"def")
        b.sync("j")
        assert b.read("j") == b"abcdef" == (tmp_path / "j").read_bytes()
        b.write("j", b"replaced")
        b.sync("j")
        b.append("j", b"+tail")  # appends go to the new file, not the replaced one
        b.sync()
        assert b.read("j") == b"replaced+tail"
        b.truncate("j", 8)
        b.append("j", b"!")
        b.sync("j")
        assert b.read("j") == b"replaced!"
        b.write("d", b"dump")
        assert b.list() == ["d", "j"]
        b.delete("d")
        b.delete("never-existed")
        assert b.list() == ["j"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["j"]


def test_absolute_names_and_leftover_temporary_files(tmp_path: Path) -> None:
    other = tmp_path / "elsewhere"
    other.mkdir()
    with FileBackend(tmp_path / "unused") as b:
        target = str(other / "x.bin")
        b.write(target, b"one")
        assert (other / "x.bin").read_bytes() == b"one"
        (other / "x.bin.tmp").write_bytes(b"stale from a crash")
        b.write(target, b"two")
        assert b.read(target) == b"two" and not (other / "x.bin.tmp").exists()
        assert b.list() == []  # its own directory does not exist: nothing listed


def test_bad_names_are_refused(tmp_path: Path) -> None:
    with FileBackend(tmp_path) as b:
        with pytest.raises(ValueError, match="non-empty string"):
            b.append("", b"x")
