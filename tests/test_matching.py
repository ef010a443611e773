"""Matching by natural keys, key by key: names as providers compare them, then e-mail addresses."""

from __future__ import annotations

from connected_objects.receive.matching import key_values
from connected_objects.receive.matching import match

KEYS = ("DisplayName", "PrimaryEmailAddr.Address")


def values(name: str | None, email: str | None = None) -> dict[str, str | None]:
    return key_values({"DisplayName": name, "PrimaryEmailAddr": {"Address": email} if email else None}, KEYS)


def test_a_row_with_another_name_is_matched_by_its_email_address_the_next_key():
    local = {"1": values("Acme Limited", "ap@acme.example"), "2": values("Globex")}
    remote = {"a": values("Acme Ltd", "AP@acme.example"), "b": values("GLOBEX ")}
    found = match(local, remote, KEYS)
    assert found.matched == {"1": "a", "2": "b"} and not found.ambiguous


def test_a_row_matched_by_the_first_key_is_out_of_the_running_for_the_next():
    local = {"1": values("Acme", "ap@acme.example"), "2": values("Initech", "ap@acme.example")}
    remote = {"a": values("Acme", "ap@acme.example")}
    found = match(local, remote, KEYS)
    assert found.matched == {"1": "a"} and found.local_only == ["2"] and not found.ambiguous


def test_two_records_sharing_an_email_address_are_ambiguous_not_linked():
    local = {"1": values("Acme Limited", "ap@acme.example")}
    remote = {"a": values("Acme Ltd", "ap@acme.example"), "b": values("Acme (old)", "ap@acme.example")}
    found = match(local, remote, KEYS)
    assert found.matched == {} and [(a.key, a.local_ids, a.foreign_ids) for a in found.ambiguous] == [
        ("PrimaryEmailAddr.Address", ("1",), ("a", "b"))
    ]


def test_no_value_is_never_a_match():
    found = match({"1": values(None)}, {"a": values(None)}, KEYS)
    assert found.matched == {} and found.local_only == ["1"] and found.remote_only == ["a"]
