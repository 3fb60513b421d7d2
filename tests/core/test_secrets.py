"""Dapr's two local secret stores, as the core registers them."""

from __future__ import annotations

import json
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import pytest

from turnout import ComponentError
from turnout._plugins import load_registry
from turnout._secrets import (
    EnvSecretStore,
    FileSecretStore,
    FileSecretStoreMetadata,
    SecretStore,
    flatten_secrets,
)

NESTED = {
    "redisPassword": "pw",
    "connectionStrings": {"sql": "sql-conn", "mysql": "mysql-conn"},
    "ports": [80, 443],
    "flags": {"debug": True, "ratio": 0.5, "none": None},
}


def test_single_valued_file_flattens_every_leaf_into_its_own_secret() -> None:
    assert flatten_secrets(NESTED) == {
        "redisPassword": {"redisPassword": "pw"},
        "connectionStrings:sql": {"connectionStrings:sql": "sql-conn"},
        "connectionStrings:mysql": {"connectionStrings:mysql": "mysql-conn"},
        "ports:0": {"ports:0": "80"},
        "ports:1": {"ports:1": "443"},
        "flags:debug": {"flags:debug": "true"},
        "flags:ratio": {"flags:ratio": "0.5"},
        "flags:none": {"flags:none": ""},
    }


def test_separator_can_be_chosen() -> None:
    assert flatten_secrets({"a": {"b": {"c": "x"}}}, separator="__") == {"a__b__c": {"a__b__c": "x"}}


def test_multi_valued_file_makes_each_top_level_key_a_secret() -> None:
    data = {"db": {"user": "u", "password": "p", "tls": {"ca": "c"}}, "token": "t", "retries": 3}
    assert flatten_secrets(data, multi_valued=True) == {
        "db": {"user": "u", "password": "p", "tls:ca": "c"},
        "token": {"token": "t"},
        "retries": {"retries": "3"},
    }


def test_keys_that_collide_once_joined_are_refused() -> None:
    with pytest.raises(ComponentError) as raised:
        flatten_secrets({"a:b": "x", "a": {"b": "y"}}, file="s.json")
    assert raised.value.reason == (
        "the secrets file s.json gives 'a:b' twice once nested keys are joined with ':': "
        "rename one of them or choose another nestedSeparator"
    )


def test_env_store_reads_prefixed_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MYAPP_DB_PASSWORD", "s3cret")
    store = EnvSecretStore("env", prefix="MYAPP_")
    assert store.get_secret("DB_PASSWORD") == {"DB_PASSWORD": "s3cret"}
    assert isinstance(store, SecretStore)


def test_env_store_takes_an_environment() -> None:
    store = EnvSecretStore("env", environ={"A": ""})
    assert store.get_secret("A") == {"A": ""}


def test_env_store_missing_variable_names_store_and_secret() -> None:
    with pytest.raises(ComponentError) as raised:
        EnvSecretStore("env", prefix="P_", environ={}).get_secret("DB")
    assert str(raised.value) == (
        "component 'env': secret 'DB' not found in secret store 'env': environment variable 'P_DB' is not set"
    )
    assert raised.value.component == "env"


@pytest.mark.parametrize(("prefix", "name"), [("", "DAPR_API_TOKEN"), ("dapr_", "X"), ("", "app_api_token")])
def test_env_store_never_hands_out_dapr_variables(prefix: str, name: str) -> None:
    store = EnvSecretStore("env", prefix=prefix, environ={(prefix + name): "x"})
    with pytest.raises(ComponentError, match=r"may not read environment variable .*Dapr reserves DAPR_"):
        store.get_secret(name)


def write_json(tmp_path: Path, data: Any, name: str = "secrets.json") -> Path:
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else json.dumps(data), encoding="utf-8")
    return path


def test_file_store_reads_the_file_once(tmp_path: Path) -> None:
    path = write_json(tmp_path, NESTED)
    store = FileSecretStore.from_file("local", path)
    path.unlink()
    assert store.get_secret("connectionStrings:sql") == {"connectionStrings:sql": "sql-conn"}
    found = store.get_secret("redisPassword")
    found["redisPassword"] = "changed"
    assert store.get_secret("redisPassword") == {"redisPassword": "pw"}


def test_file_store_missing_secret_lists_the_secrets(tmp_path: Path) -> None:
    store = FileSecretStore.from_file("local", write_json(tmp_path, {"a": "1", "b": "2"}))
    with pytest.raises(ComponentError) as raised:
        store.get_secret("c")
    assert raised.value.reason == (
        f"secret 'c' not found in secret store 'local' (file {tmp_path}/secrets.json; its secrets: a, b)"
    )


def test_file_store_lists_at_most_twenty_secrets(tmp_path: Path) -> None:
    store = FileSecretStore.from_file("local", write_json(tmp_path, {f"s{i:02}": "x" for i in range(30)}))
    with pytest.raises(ComponentError, match=r"its secrets: s00, .*, s19, \.\.\.\)$"):
        store.get_secret("nope")


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (
            None,
            "secrets file not found: {path} (a relative secretsFile is resolved against the working "
            "directory)",
        ),
        ('{"a": ', "the secrets file {path} is not valid JSON at line 1, column 7: Expecting value"),
        (
            '["a"]',
            "the secrets file {path} must hold a JSON object (secret names to values), not a JSON list",
        ),
    ],
    ids=["missing", "invalid JSON", "not an object"],
)
def test_file_store_refuses_a_bad_file(tmp_path: Path, content: str | None, expected: str) -> None:
    path = tmp_path / "secrets.json" if content is None else write_json(tmp_path, content)
    with pytest.raises(ComponentError) as raised:
        FileSecretStore.from_file("local", path)
    assert raised.value.reason == expected.format(path=path)
    assert (raised.value.component, raised.value.field) == ("local", "spec.metadata.secretsFile")


def test_file_store_collision_points_at_the_separator(tmp_path: Path) -> None:
    with pytest.raises(ComponentError) as raised:
        FileSecretStore.from_file("local", write_json(tmp_path, {"a:b": "x", "a": {"b": "y"}}))
    assert raised.value.field == "spec.metadata.nestedSeparator"


def test_file_store_metadata_defaults_like_dapr() -> None:
    metadata = FileSecretStoreMetadata.model_validate({"secretsFile": "s.json", "nestedSeparator": ""})
    assert (metadata.secrets_file, metadata.nested_separator, metadata.multi_valued) == ("s.json", ":", False)


def test_secret_stores_are_a_plugin_of_their_own(monkeypatch: pytest.MonkeyPatch) -> None:
    (entry,) = [e for e in entry_points(group="turnout.plugins") if e.name == "secretstores"]
    assert entry.value == "turnout._secrets"
    monkeypatch.setenv("TURNOUT_PLUGINS", "secretstores")
    assert sorted(load_registry().names()) == ["secretstores.local.env", "secretstores.local.file"]
    monkeypatch.setenv("TURNOUT_PLUGINS", "builtin")
    assert "secretstores.local.env" not in load_registry()
