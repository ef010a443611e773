"""connected_objects.util.settings: argument, else the provider's variable, else its legacy names, else the default."""

from __future__ import annotations

import pytest

from connected_objects.util.settings import renamed
from connected_objects.util.settings import setting
from connected_objects.util.settings import variable


def test_the_variable_is_named_after_the_provider_and_the_argument():
    assert variable("quickbooks", "webhook_verifier") == "CONNECTED_OBJECTS_QUICKBOOKS_WEBHOOK_VERIFIER"
    assert variable("my-crm", "base_url") == "CONNECTED_OBJECTS_MY_CRM_BASE_URL"


def test_a_given_argument_wins_even_when_empty():
    env = {"CONNECTED_OBJECTS_X_CLIENT_ID": "from-env"}
    assert setting("", "x", "client_id", "default", environ=env) == ""
    assert setting("given", "x", "client_id", "default", environ=env) == "given"


def test_the_new_variable_wins_over_the_legacy_one_and_an_empty_one_counts_as_unset():
    legacy = ["OLD_ID"]
    assert setting(None, "x", "client_id", "d", legacy=legacy, environ={}) == "d"
    assert setting(None, "x", "client_id", "d", legacy=legacy, environ={"OLD_ID": "old"}) == "old"
    both = {"OLD_ID": "old", "CONNECTED_OBJECTS_X_CLIENT_ID": "new"}
    assert setting(None, "x", "client_id", "d", legacy=legacy, environ=both) == "new"
    empty_new = {"OLD_ID": "old", "CONNECTED_OBJECTS_X_CLIENT_ID": ""}
    assert setting(None, "x", "client_id", "d", legacy=legacy, environ=empty_new) == "old"


def test_the_process_environment_is_read_by_default(monkeypatch):
    monkeypatch.setenv("CONNECTED_OBJECTS_X_TOKEN_URL", "https://idp.example/token")
    assert setting(None, "x", "token_url", "d") == "https://idp.example/token"


def test_a_renamed_argument_takes_either_name_but_not_both():
    assert renamed("marketplace", "sandbox", "environment", None) == "sandbox"
    assert renamed("marketplace", None, "environment", "sandbox") == "sandbox"
    assert renamed("marketplace", None, "environment", None) is None
    with pytest.raises(TypeError, match="pass marketplace= only"):
        renamed("marketplace", "production", "environment", "production")
