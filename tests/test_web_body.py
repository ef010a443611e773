"""The bounded JSON reader: its depth scan agrees with the parser, and what it refuses it refuses early."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from connected_objects.web.body import UnreadableBody
from connected_objects.web.body import read_json

# Strings full of what the scan must skip: brackets, quotes, backslashes.
tricky_text = st.text(alphabet=st.sampled_from('[]{}"\\ab\u00e9\n'), max_size=12)
values = st.recursive(
    st.none() | st.booleans() | st.integers() | tricky_text,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(tricky_text, children, max_size=3),
    max_leaves=30,
)


def depth(value: Any) -> int:
    if isinstance(value, list):
        return 1 + max((depth(v) for v in value), default=0)
    if isinstance(value, dict):
        return 1 + max((depth(v) for v in value.values()), default=0)
    return 0


@settings(max_examples=200, deadline=None, database=None)
@given(value=values, limit=st.integers(min_value=0, max_value=8))
def test_the_depth_limit_is_exact_whatever_the_strings_hold(value, limit):
    data = json.dumps(value).encode()
    if depth(value) <= limit:
        assert read_json(data, max_depth=limit) == value
    else:
        with pytest.raises(UnreadableBody, match="deeper than"):
            read_json(data, max_depth=limit)


@pytest.mark.parametrize(
    "body",
    [
        b'"' + b'\\"' * 50_000 + b"[" * 100,  # an unterminated string full of escaped quotes
        b"]" + b"[" * 100_000,  # a stray closer first: the parser stops there
        b'{"a": "\\\\"' + b"[" * 100,  # an escaped backslash ends the string; the brackets count
    ],
)
def test_malformed_bodies_are_refused_without_recursion(body):
    with pytest.raises(UnreadableBody):
        read_json(body)


def test_size_is_checked_first():
    with pytest.raises(UnreadableBody, match="larger than 10 bytes"):
        read_json(b"[" * 11, max_bytes=10)


def test_valid_surrogate_pairs_and_non_ascii_are_kept():
    assert read_json(b'{"emoji": "\\ud83d\\ude00", "name": "Zo\\u00eb"}') == {"emoji": "\U0001f600", "name": "Zoë"}
