"""The stack on a laptop: AWS emulated by moto, the real handlers, no credentials or Docker.

`bootstrap` creates the stack's resources and loads project config; `context` is the Lambda context
the handlers get; `dev`, `invoke` and `batch` are the `make dev`, `make invoke` and `make batch`
commands.
"""
