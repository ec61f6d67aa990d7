"""Batch completions driven by AWS events.

```
S3 batches/input/<name>.jsonl ──> splitter ──> SQS messages (a few lines each) ──> workers
                                   │                                                │ one result item per
                                   └── batch record (status, counts) <── counters ──┘ line, counted once
                                                         │ the worker that sees done == total (and wins the claim)
                                                         └──> assemble ──> S3 batches/output/<name>.jsonl
SQS message with a chat request ──> worker ──> stored completion (+ reply to SQS / EventBridge)
```
`lines` is the format (no I/O); `jobs` the DynamoDB batch record and result items; `objects` S3, SQS
and reply adapters; `splitter`, `worker`, `assemble` the steps; `runtime` wires them for the entrypoint.
"""
