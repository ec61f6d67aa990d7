"""Reading a batch input file line by line (`objects.split_lines`, `Blobs.lines`): split on LF only,
whatever the chunk boundaries, in time linear in a line's length."""

from __future__ import annotations

import io
import time
from typing import Any

import pytest
from botocore.response import StreamingBody

from handler.batch.objects import Blobs, split_lines

pytestmark = pytest.mark.unit

BODY = b'{"a": 1}\r\n\n{"b":\r2}\n  \n\xef\xbb\xbf{"c": "\xe2\x80\xa8"}\n\n\n{"d": 4}'
LINES = [b'{"a": 1}\r', b"", b'{"b":\r2}', b"  ", b'\xef\xbb\xbf{"c": "\xe2\x80\xa8"}', b"", b"", b'{"d": 4}']


def test_lines_split_on_lf_only_keeping_blank_lines_and_a_last_line_without_lf() -> None:
    # A CR stays (before an LF, or inside a line, where JSON allows it as whitespace); blank lines
    # come through as b"" for the splitter to skip; nothing else is a line end.
    assert list(split_lines([BODY])) == LINES
    assert list(split_lines([BODY + b"\n"])) == LINES
    assert list(split_lines([])) == []
    assert list(split_lines([b""])) == []
    assert list(split_lines([b"\n"])) == [b""]


def test_any_chunk_boundaries_give_the_same_lines() -> None:
    for at in range(len(BODY) + 1):
        assert list(split_lines([BODY[:at], BODY[at:]])) == LINES, at
    for size in (1, 2, 3, 7):
        chunks = [BODY[i : i + size] for i in range(0, len(BODY), size)]
        assert list(split_lines(chunks)) == LINES, size


def test_a_line_longer_than_many_chunks_is_read_in_linear_time() -> None:
    line = b"x" * (32 * 1024 * 1024)
    chunks = [line[i : i + 64 * 1024] for i in range(0, len(line), 64 * 1024)] + [b"\nnext"]
    started = time.perf_counter()
    assert [len(x) for x in split_lines(chunks)] == [len(line), 4]
    # 512 chunks: re-joining the unfinished line at every chunk would copy ~8 GB (tens of seconds).
    assert time.perf_counter() - started < 2


class _S3:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.asked: dict[str, Any] = {}

    def get_object(self, **kwargs: Any) -> dict[str, Any]:
        self.asked = kwargs
        return {"Body": StreamingBody(io.BytesIO(self.data), len(self.data))}


def test_blobs_lines_reads_an_s3_body_in_chunks() -> None:
    big = b'{"big": "' + b"y" * (3 * 1024 * 1024) + b'"}'  # longer than one 1 MiB read
    s3 = _S3(BODY + b"\n" + big + b"\n")
    lines = list(Blobs("bucket", client=s3).lines("batches/input/x.jsonl", etag='"abc"'))
    assert lines == [*LINES, big]
    assert s3.asked == {"Bucket": "bucket", "Key": "batches/input/x.jsonl", "IfMatch": '"abc"'}
