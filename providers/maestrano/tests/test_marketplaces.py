"""Marketplace configuration: static, from the developer platform, last-good fallback, metadata without secrets."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from connected_objects_maestrano import DevPlatform
from connected_objects_maestrano import Marketplaces
from connected_objects_maestrano.testing import FakeDevPlatform
from connected_objects_maestrano.testing import marketplace_config

from connected_objects import ConfigurationError
from connected_objects import UnknownMarketplace


def test_unknown_key_is_an_error_naming_the_configured_ones():
    marketplaces = Marketplaces.from_config({"marketplaces": [marketplace_config("a"), marketplace_config("b")]})
    with pytest.raises(UnknownMarketplace, match=r"'c'.*configured: a, b"):
        marketplaces.get("c")


def test_lookup_by_api_credentials():
    marketplaces = Marketplaces.from_config({"marketplaces": [marketplace_config("a"), marketplace_config("b")]})
    assert marketplaces.by_credentials("app-b", "secret-key-of-b").key == "b"
    assert marketplaces.by_credentials("app-b", "secret-key-of-a") is None


@pytest.mark.parametrize(
    ("broken", "message"),
    [
        ({"marketplaces": "nope"}, "'marketplaces' list"),
        ({"marketplaces": [{"marketplace": "x"}]}, r"x\]\.app\.host"),
        ({"marketplaces": [{**marketplace_config("x"), "api": {"id": "i", "host": "h"}}]}, r"api\.key"),
        ({"marketplaces": [marketplace_config("x"), marketplace_config("x")]}, "configured twice"),
        ({"error": "invalid environment"}, "reports an error"),
        ({"marketplaces": [{**marketplace_config("x"), "sso": {"idp_initiated": "yes"}}]}, r"sso\.idp_initiated"),
        ({"marketplaces": [{**marketplace_config("x"), "sso": {"entity_id": ""}}]}, r"sso\.entity_id"),
        (
            {
                "marketplaces": [
                    {**marketplace_config(k), "sso": {"entity_id": "https://app.example.com"}} for k in ("x", "y")
                ]
            },
            "share one sso.entity_id",
        ),
    ],
)
def test_malformed_configuration_says_what_is_wrong(broken, message):
    with pytest.raises(ConfigurationError, match=message):
        Marketplaces.from_config(broken)


def test_static_configuration_from_toml_and_env(tmp_path: Path, monkeypatch):
    path = tmp_path / "marketplaces.toml"
    path.write_text(
        '[[marketplaces]]\nmarketplace = "t"\n[marketplaces.app]\nhost = "https://a"\n'
        '[marketplaces.api]\nid = "i"\nkey = "k"\nhost = "https://h"\n'
    )
    assert Marketplaces.from_toml(path).get("t").api.url == "https://h/api/v1/"
    monkeypatch.delenv("MNO_MARKETPLACES", raising=False)
    config = {"marketplaces": [marketplace_config("e")]}
    monkeypatch.setenv("CONNECTED_OBJECTS_MAESTRANO_MARKETPLACES", json.dumps(config))
    assert Marketplaces.from_env().keys() == ["e"]


def test_the_old_variable_is_read_when_the_new_one_is_unset_and_never_wins(monkeypatch):
    monkeypatch.delenv("CONNECTED_OBJECTS_MAESTRANO_MARKETPLACES", raising=False)
    with pytest.raises(ConfigurationError, match="set CONNECTED_OBJECTS_MAESTRANO_MARKETPLACES"):
        Marketplaces.from_env()
    monkeypatch.setenv("MNO_MARKETPLACES", json.dumps({"marketplaces": [marketplace_config("old")]}))
    assert Marketplaces.from_env().keys() == ["old"]
    config = {"marketplaces": [marketplace_config("new")]}
    monkeypatch.setenv("CONNECTED_OBJECTS_MAESTRANO_MARKETPLACES", json.dumps(config))
    assert Marketplaces.from_env().keys() == ["new"]


def test_idp_initiated_login_is_off_unless_configured(tmp_path: Path, monkeypatch):
    assert Marketplaces.from_config({"marketplaces": [marketplace_config("a")]}).get("a").sso.idp_initiated is False
    path = tmp_path / "marketplaces.toml"
    path.write_text(
        '[[marketplaces]]\nmarketplace = "t"\n[marketplaces.app]\nhost = "https://a"\n'
        '[marketplaces.api]\nid = "i"\nkey = "k"\nhost = "https://h"\n'
        '[marketplaces.sso]\nidp_initiated = true\nentity_id = "urn:our-app:t"\n'
    )
    from_toml = Marketplaces.from_toml(path).get("t")
    assert from_toml.sso.idp_initiated is True and from_toml.sso.entity_id == "urn:our-app:t"
    config = marketplace_config("e")
    config["sso"]["idp_initiated"] = True
    monkeypatch.setenv("CONNECTED_OBJECTS_MAESTRANO_MARKETPLACES", json.dumps({"marketplaces": [config]}))
    assert Marketplaces.from_env().get("e").sso.idp_initiated is True


def test_metadata_and_repr_never_show_a_secret():
    marketplaces = Marketplaces.from_config({"marketplaces": [marketplace_config(k) for k in ("a", "b", "c")]})
    for m in marketplaces:
        shown = json.dumps(m.to_metadata()) + repr(m) + repr(marketplaces)
        for other in marketplaces:
            for secret in other.secrets():
                assert secret not in shown


def test_dev_platform_loads_survives_downtime_and_rejects_garbage():
    platform = FakeDevPlatform([marketplace_config("maestrano"), marketplace_config("maestrano-uat")])
    source = DevPlatform("http://dev", "env-key", "env-secret", transport=httpx.WSGITransport(platform))
    assert source.marketplaces.keys() == ["maestrano", "maestrano-uat"]
    good = source.marketplaces

    platform.down = True
    assert source.reload() is False
    assert "HTTP 503" in (source.last_error or "")
    assert source.marketplaces is good  # last good copy

    platform.down = False
    platform.garbage = b'{"marketplaces": [{"marketplace": "broken"}]}'
    assert source.reload() is False
    assert "app.host" in (source.last_error or "")
    assert source.marketplaces is good

    platform.garbage = b"<html>"
    assert source.reload() is False and "not JSON" in (source.last_error or "")

    platform.garbage = None
    platform.marketplaces.append(marketplace_config("tenant-x"))
    assert source.reload() is True and source.last_error is None
    assert source.marketplaces.keys() == ["maestrano", "maestrano-uat", "tenant-x"]


def test_dev_platform_with_wrong_environment_credentials_has_no_configuration():
    platform = FakeDevPlatform([marketplace_config("m")])
    source = DevPlatform("http://dev", "env-key", "wrong", transport=httpx.WSGITransport(platform))
    with pytest.raises(ConfigurationError, match="HTTP 401"):
        _ = source.marketplaces
    assert "wrong" not in (source.last_error or "")
