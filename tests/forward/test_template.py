import pytest
from hypothesis import given
from hypothesis import strategies as st

from forward.template import compile_template, template_error
from tests.forward.support import make_row


def test_it_fills_in_the_fields():
    render = compile_template("{container_name} [{stream}/{level}] {line} @{ts}")
    row = make_row(0, line="boom", level=3)
    assert render(row) == "web-1 [stderr/error] boom @2023-11-14T22:13:20.123456789Z"


def test_an_empty_template_sends_the_line_as_stored():
    assert compile_template("") is None


@pytest.mark.parametrize(
    ("template", "problem"),
    [
        ("{nope}", "unknown"),
        ("{line.__class__}", "unknown"),
        ("{line[0]}", "unknown"),
        ("{line!r}", "conversions"),
        ("{line:>10}", "format specs"),
        ("{line", "literal braces"),
    ],
)
def test_it_refuses_what_it_cannot_fill(template, problem):
    assert problem in template_error(template)


@given(st.text())
def test_any_template_is_refused_or_renders_to_text(template):
    if template_error(template) is None:
        assert isinstance(compile_template(template)(make_row(0)) if template else "", str)
