"""The new chunk fields leave every existing chunk byte for byte as it was."""

from __future__ import annotations

import orjson

from handler.contract.sse import ChunkFormatter


def formatter() -> ChunkFormatter:
    return ChunkFormatter("chatcmpl-1", 1700000000, "p/m", "s-1", ["c-1"])


def test_usage_chunk_without_cache_reads_is_unchanged() -> None:
    assert formatter().usage(3, 4) == (
        b'data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1700000000,"model":"p/m",'
        b'"session_id":"s-1","choices":[],"usage":{"prompt_tokens":3,"completion_tokens":4,"total_tokens":7}}\n\n'
    )


def test_usage_chunk_with_cache_reads_has_prompt_tokens_details() -> None:
    data = orjson.loads(formatter().usage(903, 4, cached_tokens=900)[6:])
    assert data["usage"] == {
        "prompt_tokens": 903,
        "completion_tokens": 4,
        "total_tokens": 907,
        "prompt_tokens_details": {"cached_tokens": 900},
    }


def test_reasoning_and_thinking_block_chunks() -> None:
    fmt = formatter()
    delta = orjson.loads(fmt.reasoning(0, "Hmm")[6:])["choices"][0]["delta"]
    assert delta == {"id": "c-1", "role": "assistant", "content": "", "reasoning_content": "Hmm"}
    block = {"type": "thinking", "thinking": "Hmm", "signature": "sig"}
    delta = orjson.loads(fmt.thinking_block(0, block)[6:])["choices"][0]["delta"]
    assert delta["thinking_blocks"] == [block] and "reasoning_content" not in delta
