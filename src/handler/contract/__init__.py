"""The OpenAI-shaped wire contract: request, response, chunk and error body.

HTTP (`api`), batch lines (`batch`) and the completion service all speak it, so it sits below
them and imports nothing of theirs.
"""
