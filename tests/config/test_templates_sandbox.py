"""The system-prompt sandbox as pure functions: what renders, what is refused, and how."""

from __future__ import annotations

import pytest

from handler.config.templates import check_template, render_system_prompt
from handler.errors import ConfigError, InvalidRequest

pytestmark = pytest.mark.unit


def test_arguments_render_literally_never_as_template_code() -> None:
    payload = "{{ 7 * 7 }}{% for x in range(3) %}x{% endfor %}"
    assert render_system_prompt("You are {{ persona }}.", {"persona": payload}) == f"You are {payload}."


def test_loops_conditions_and_whitelisted_string_methods_work() -> None:
    source = "{% for d in docs %}[{{ d }}]{% endfor %}{% if vip %} VIP{% endif %} {{ s.upper() }}"
    assert render_system_prompt(source, {"docs": ["a", "b"], "vip": True, "s": "x"}) == "[a][b] VIP X"


@pytest.mark.parametrize(
    "source",
    [
        "{{ ''.__class__ }}",
        "{{ x._private }}",
        "{{ x['__dict__'] }}",
        "{{ self }}",
        "{% import 'os' as os %}",
        "{% for x in y recursive %}{{ loop(x) }}{% endfor %}",
    ],
)
def test_templates_that_reach_outside_are_refused_at_validation(source: str) -> None:
    with pytest.raises(ValueError):
        check_template(source)
    with pytest.raises(ConfigError):  # and at render time too, never run
        render_system_prompt(source, {})


def test_a_missing_argument_is_a_400_naming_it() -> None:
    with pytest.raises(InvalidRequest) as caught:
        render_system_prompt("Hi {{ name }}", {})
    assert caught.value.param == "system_prompt_args.name"


def test_an_argument_driven_blowup_is_a_bounded_400() -> None:
    with pytest.raises(InvalidRequest) as caught:
        render_system_prompt("{% for i in range(n) %}{{ s }}{% endfor %}", {"n": 10**9, "s": "x" * 1000})
    assert caught.value.param == "system_prompt_args"
