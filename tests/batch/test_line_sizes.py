"""Issue #11 B5/B6: every line up to the documented limit is answered, and every input line (blank
ones too) has exactly one output line, in order, counted in `request_counts`."""

from __future__ import annotations

from gatewayctl.local.batch import Pipeline
from handler.wiring import default_batch_runtime as runtime
from tests.batch.conftest import chat_line, read_output


def _run(pipeline: Pipeline, data: bytes, key: str) -> tuple[dict[str, int], list[dict[str, object]]]:
    (started,) = pipeline.upload(data, key)["batches"]

    def finished() -> bool:
        job = runtime().table.get(started["id"])
        return job is not None and job.status in ("completed", "failed")

    pipeline.drain(finished, timeout_s=60)
    job = runtime().table.get(started["id"])
    assert job is not None and job.status == "completed", job
    counts = {"total": job.total or 0, "completed": job.completed, "failed": job.failed}
    return counts, read_output(pipeline.bucket, job.output_key)


def test_lines_above_the_inline_size_are_answered_up_to_the_body_limit(
    pipeline: Pipeline, aws: dict[str, str]
) -> None:
    # A line above `BATCH_INLINE_BYTES` (48 KB) travels as an S3 part; the worker used to validate the
    # stored line itself instead of its body: `messages: Field required` for every such line.
    # (190 KB: the demo project caps a message at 200,000 characters.)
    sizes = {"47k": 47_000, "49k": 49_000, "190k": 190_000}
    lines = [chat_line(name, "x" * size) for name, size in sizes.items()]
    counts, output = _run(pipeline, ("\n".join(lines) + "\n").encode(), "batches/input/big.jsonl")
    assert counts == {"total": 3, "completed": 3, "failed": 0}
    for line, (name, size) in zip(output, sizes.items(), strict=True):
        assert line["custom_id"] == name and line["error"] is None, line
        assert line["response"]["body"]["choices"][0]["message"]["content"] == "x" * size  # type: ignore[index]


def test_blank_lines_get_their_own_error_line_and_are_counted(
    pipeline: Pipeline, aws: dict[str, str]
) -> None:
    # README: "one output line per input line, in order". 2,000 lines with 11 blank ones gave 1,989.
    data = "\n".join([chat_line("a", "one"), "", "   ", chat_line("b", "two"), ""]) + "\n"
    counts, output = _run(pipeline, data.encode(), "batches/input/blanks.jsonl")
    assert counts == {"total": 5, "completed": 2, "failed": 3}
    assert [o["custom_id"] for o in output] == ["a", None, None, "b", None]
    assert [o["error"]["code"] if o["error"] else None for o in output] == [  # type: ignore[index]
        None,
        "empty_line",
        "empty_line",
        None,
        "empty_line",
    ]
