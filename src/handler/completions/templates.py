"""System prompt templates, rendered in a sandbox.

The template comes from the project's config; `system_prompt_args` come from the request and are
only ever data: they are passed as variables, never parsed as template source, so `{{ 7*7 }}` in an
argument stays those characters. The sandbox refuses attribute tricks (`__class__`, `mro`, ...),
`StrictUndefined` turns a missing argument into a 400 that names it, and output size is capped.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

from jinja2 import StrictUndefined, TemplateError, TemplateSyntaxError, UndefinedError
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError

from handler.errors import ConfigError, InvalidRequest

MAX_OUTPUT_CHARS = 100_000
_MISSING = re.compile(r"'([^']+)' is undefined")


class _BoundedEnvironment(ImmutableSandboxedEnvironment):
    # `range(10**9)` would hang a worker: the sandbox's own cap is 100k, ours is lower.
    def call(self, context: Any, obj: Any, *args: Any, **kwargs: Any) -> Any:
        if obj is range and args and any(isinstance(a, int) and abs(a) > 10_000 for a in args):
            raise SecurityError("range too large in template")
        return super().call(context, obj, *args, **kwargs)


_env = _BoundedEnvironment(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=False)


@lru_cache(maxsize=256)
def _compile(source: str) -> Any:
    try:
        return _env.from_string(source)
    except TemplateSyntaxError as exc:
        raise ConfigError(f"system prompt template does not compile: {exc.message}") from exc


def render_system_prompt(source: str, args: dict[str, Any] | None) -> str:
    template = _compile(source)
    try:
        out: str = template.render(**(args or {}))
    except UndefinedError as exc:
        missing = _MISSING.search(str(exc.message or ""))
        name = missing.group(1) if missing else "an argument"
        raise InvalidRequest(
            f"system_prompt_args is missing {name!r}, which the project's system prompt template uses",
            param=f"system_prompt_args.{name}" if missing else "system_prompt_args",
        ) from exc
    except SecurityError as exc:
        raise InvalidRequest(
            f"system_prompt_args: rendering refused by the sandbox ({exc})", param="system_prompt_args"
        ) from exc
    except (TemplateError, TypeError, ValueError, ArithmeticError, RecursionError) as exc:
        raise InvalidRequest(
            f"system_prompt_args: the template could not be rendered with these arguments ({type(exc).__name__})",
            param="system_prompt_args",
        ) from exc
    if len(out) > MAX_OUTPUT_CHARS:
        raise InvalidRequest(
            f"system_prompt_args: the rendered system prompt exceeds {MAX_OUTPUT_CHARS} characters",
            param="system_prompt_args",
        )
    return out
