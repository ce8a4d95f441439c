"""The record format: headers are checked, and a bad record is judged torn or corrupt by where it is."""

from __future__ import annotations

import struct

import pytest

from syncobj.storage import checksum
from syncobj.storage.errors import CorruptFileError, UnsupportedVersionError, WrongClusterError
from syncobj.storage.records import (HEAD_SIZE, MARKER, RecordReader, decode_header, encode_header, encode_record)

MAGIC = b"TESTMAGC"
CRC = checksum.CRC32


def make_file(payloads: list[bytes], algorithm: int = CRC, cluster: bytes = b"c1") -> tuple[bytes, list[int]]:
    """A file of records; returns it with the offset of each record."""
    data = bytearray(encode_header(MAGIC, 1, algorithm, cluster))
    offsets = []
    for i, p in enumerate(payloads):
        offsets.append(len(data))
        data += encode_record(1 + i % 3, p, algorithm)
    return bytes(data), offsets


def read_all(data: bytes, algorithm: int = CRC) -> tuple[list[tuple[int, int, bytes]], RecordReader]:
    header = decode_header(data, file="f", kind="test", magic=MAGIC, versions=(1,), cluster_id=b"c1")
    reader = RecordReader(data, header.size, file="f", algorithm=algorithm)
    return [(r.offset, r.type, bytes(r.payload)) for r in reader], reader


PAYLOADS = [b"first", b"", b"x" * 300, b"last record"]


def test_records_round_trip_with_types_and_offsets() -> None:
    data, offsets = make_file(PAYLOADS)
    records, reader = read_all(data)
    assert records == [(o, 1 + i % 3, p) for i, (o, p) in enumerate(zip(offsets, PAYLOADS))]
    assert reader.torn is None and reader.end == len(data)


def test_crc32c_matches_the_standard_check_value_and_chains() -> None:
    assert checksum.crc32c_pure(b"123456789") == 0xE3069283
    fn = checksum.function(checksum.CRC32C)
    assert fn is not None and fn(b"6789", fn(b"12345")) == fn(b"123456789") == 0xE3069283


def test_a_file_written_with_crc32c_reads_back_and_detects_damage() -> None:
    data, offsets = make_file(PAYLOADS, algorithm=checksum.CRC32C)
    records, _ = read_all(data, checksum.CRC32C)
    assert [r[2] for r in records] == PAYLOADS
    damaged = bytearray(data)
    damaged[offsets[0] + HEAD_SIZE] ^= 1
    with pytest.raises(CorruptFileError):
        read_all(bytes(damaged), checksum.CRC32C)


@pytest.mark.parametrize("cut", range(1, 40))
def test_a_last_record_cut_anywhere_is_a_torn_tail_and_nothing_before_it_is_lost(cut: int) -> None:
    data, offsets = make_file(PAYLOADS)
    last = offsets[-1]
    cut_at = min(last + cut, len(data) - 1)
    records, reader = read_all(data[:cut_at])
    assert [r[2] for r in records] == PAYLOADS[:-1]
    assert reader.torn is not None and reader.torn.offset == last and reader.torn.dropped == cut_at - last


def test_a_bit_flip_in_the_last_record_is_reported_as_a_torn_tail() -> None:
    data, offsets = make_file(PAYLOADS)
    for pos in range(offsets[-1], len(data)):
        damaged = bytearray(data)
        damaged[pos] ^= 0x10
        records, reader = read_all(bytes(damaged))
        assert [r[2] for r in records] == PAYLOADS[:-1], pos
        assert reader.torn is not None and reader.torn.offset == offsets[-1]


def test_a_bit_flip_in_any_earlier_record_is_corruption_naming_file_and_offset() -> None:
    data, offsets = make_file(PAYLOADS)
    for i in range(len(PAYLOADS) - 1):
        for pos in range(offsets[i], offsets[i + 1]):
            damaged = bytearray(data)
            damaged[pos] ^= 0x04
            with pytest.raises(CorruptFileError) as err:
                read_all(bytes(damaged))
            assert err.value.file == "f" and err.value.offset == offsets[i], pos
            assert f"byte offset {offsets[i]}" in str(err.value)


def test_a_damaged_length_is_not_mistaken_for_a_torn_tail() -> None:
    # Make the second record claim a huge (64-bit) length: only the head checksum tells this
    # from a record that the end of the file cut short.
    data, offsets = make_file(PAYLOADS)
    damaged = bytearray(data)
    struct.pack_into("<Q", damaged, offsets[1] + 3, 5 << 32)
    with pytest.raises(CorruptFileError) as err:
        read_all(bytes(damaged))
    assert err.value.offset == offsets[1] and "valid record follows" in err.value.reason


def test_lengths_are_64_bit_a_record_over_4_gib_is_read_as_cut_short_not_misparsed() -> None:
    data, _ = make_file([b"a"])
    fn = checksum.function(CRC)
    head = struct.pack("<2sBQ", MARKER, 1, (4 << 30) + 7)
    big_head = head + struct.pack("<I", fn(head))
    records, reader = read_all(data + big_head + b"partial payload")
    assert [r[2] for r in records] == [b"a"]
    assert reader.torn is not None and str((4 << 30) + 7) in reader.torn.reason


def test_garbage_after_the_last_record_is_a_torn_tail() -> None:
    data, offsets = make_file(PAYLOADS)
    for junk in (b"\x00" * 50, b"\xff", b"\x00" * (HEAD_SIZE - 1), MARKER + b"\x01\x02"):
        records, reader = read_all(data + junk)
        assert len(records) == len(PAYLOADS)
        assert reader.torn is not None and reader.torn.offset == len(data) and reader.torn.dropped == len(junk)


def test_zeroed_last_record_is_torn_but_zeroed_middle_record_is_corruption() -> None:
    data, offsets = make_file(PAYLOADS)
    zero_last = data[:offsets[-1]] + bytes(len(data) - offsets[-1])
    _, reader = read_all(zero_last)
    assert reader.torn is not None and reader.torn.offset == offsets[-1]
    zero_mid = data[:offsets[1]] + bytes(offsets[2] - offsets[1]) + data[offsets[2]:]
    with pytest.raises(CorruptFileError) as err:
        read_all(zero_mid)
    assert err.value.offset == offsets[1]


def header_error(data: bytes, cluster: bytes = b"c1") -> Exception:
    with pytest.raises(Exception) as err:
        decode_header(data, file="node.journal", kind="journal", magic=MAGIC, versions=(1,), cluster_id=cluster)
    return err.value


def test_header_problems_are_named() -> None:
    good = encode_header(MAGIC, 1, CRC, b"c1")
    err = header_error(good, cluster=b"other")
    assert isinstance(err, WrongClusterError) and "'c1'" in str(err) and "'other'" in str(err)
    err = header_error(encode_header(MAGIC, 9, CRC, b"c1"))
    assert isinstance(err, UnsupportedVersionError) and "version 9" in str(err) and "node.journal" in str(err)
    err = header_error(b"NOTMAGIC" + good[8:])
    assert isinstance(err, CorruptFileError) and "not a syncobj journal" in str(err)
    err = header_error(encode_header(MAGIC, 1, 77, b"c1"))
    assert isinstance(err, UnsupportedVersionError) and "checksum algorithm id 77" in str(err)
    for n in range(len(good)):
        assert isinstance(header_error(good[:n]), CorruptFileError), n
    flipped = bytearray(good)
    flipped[-6] ^= 1  # inside the cluster id: caught by the header checksum, not called another cluster
    err = header_error(bytes(flipped))
    assert isinstance(err, CorruptFileError) and "header checksum" in str(err)
