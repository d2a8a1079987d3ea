from driver.buffer import DiskBuffer


def test_it_keeps_segments_in_sequence_order_whatever_the_write_order(tmp_path):
    buf = DiskBuffer(tmp_path, 10_000)
    buf.append(10, [b"c", b"d"])
    buf.append(0, [b"a", b"b"])
    seen = []
    while (seg := buf.oldest()) is not None:
        seen.extend(buf.read(seg))
        buf.remove(seg)
    assert seen == [b"a", b"b", b"c", b"d"]
    assert buf.bytes == 0


def test_it_drops_the_oldest_segments_when_full_and_counts_their_lines(tmp_path):
    buf = DiskBuffer(tmp_path, 100)
    assert buf.append(0, [b"x" * 39] * 2) == 0
    assert buf.append(2, [b"y" * 9] * 2) == 0
    assert buf.append(4, [b"z" * 29] * 2) == 2
    assert [s.first_seq for s in (buf.oldest(),)] == [2]
    assert buf.lines == 4
    assert buf.bytes <= 100


def test_it_resumes_what_a_previous_run_left(tmp_path):
    DiskBuffer(tmp_path, 1000).append(7, [b"a", b"b", b"c"])
    (tmp_path / "00000000000000000099-1.ndjson.tmp").write_bytes(b"half")
    again = DiskBuffer(tmp_path, 1000)
    assert again.next_seq == 10
    assert again.read(again.oldest()) == [b"a", b"b", b"c"]
    assert not list(tmp_path.glob("*.tmp"))


def test_it_drops_a_returning_batch_that_is_older_than_everything_stored(tmp_path):
    buf = DiskBuffer(tmp_path, 100)
    buf.append(10, [b"n" * 49])
    buf.append(11, [b"m" * 49])
    # A batch that was in flight when the newer lines were spilled comes back after a failure.
    assert buf.append(0, [b"o" * 49]) == 1
    assert [s.first_seq for s in sorted([buf.oldest()])] == [10]
    assert buf.lines == 2
