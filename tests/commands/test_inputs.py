"""Typed inputs (``pinpoint_agent.config``), credentials in URLs (``pinpoint_agent.urls``) and secret-store
references (``pinpoint_agent.secrets``): plain functions, no process, no server."""

from __future__ import annotations

import stat
from pathlib import Path

import orjson
import pytest

from pinpoint_agent import log
from pinpoint_agent.config import MAX_INPUT_BYTES, entries_from, load_agent_config, load_entries
from pinpoint_agent.errors import ConfigError
from pinpoint_agent.secrets import RunSecrets, mask_config, open_store, resolve_agent, resolve_entries
from pinpoint_agent.urls import clean_url, scrub_text, split_url


# -- typed inputs -----------------------------------------------------------------------------------------
@pytest.mark.parametrize(("entries", "says"), [
    ('[{"name": "mock", "type": true}]', "[0].type: must be a whole number"),
    ('[{"name": "mock", "id": {"a": 1}}]', "[0].id: must be a string"),
    ('[{"name": "mock", "type": 9}]', "[0].type: unknown type 9"),
    ('[{"name": "mock", "config": [1]}]', "[0].config: must be a JSON object"),
    ('[{"name": "mock", "extra": 1}]', "[0]: unknown field 'extra'"),
    ('[{"type": 1}]', "[0]: needs 'name'"),
    ("{}", "must be a JSON list"),
    ("[]", "non-empty JSON list"),
    ('[{"name": "mock"}, {"name": "mock", "id": "0"}]', "mock@SOURCECODE@0 is listed twice"),
])
def test_integration_entries_are_strict(entries: str, says: str) -> None:
    """Entries of the wrong shape or type are refused with the entry's index and field, in one line."""
    with pytest.raises(ConfigError) as info:
        load_entries(entries, None)
    assert says in str(info.value) and "\n" not in str(info.value)
    assert str(info.value).startswith(("--integrations-json", "integration mock"))


def test_integration_entries_keep_their_shape() -> None:
    """Ids become strings (an empty id the entry's index), type names become numbers, configs stay as given."""
    e = entries_from(b'[{"name": "mock", "type": "work", "config": {"a": 1}}, {"id": 7, "name": "git"}]', "x")
    assert [(x.id, x.name, x.type, x.config) for x in e] == [("0", "mock", 0, {"a": 1}), ("7", "git", 1, {})]


@pytest.mark.parametrize(("agent", "says"), [
    ('{"idle_timeout": -5}', "idle_timeout: Input should be greater than 0"),
    ('{"export_timeout": 0}', "export_timeout: Input should be greater than 0"),
    ('{"backend_url": "not a url", "api_key": "k"}', "backend_url: must be an http(s) url"),
    ('{"backend_url": "https://u:p@api.example.com", "api_key": "k"}', "must not carry credentials"),
    ('{"customer_id": 5}', "customer_id: must be a string"),
    ('{"skip_git": "yes"}', "skip_git: must be a boolean"),
    ("[1]", "must be a JSON object"),
])
def test_agent_config_is_strict(agent: str, says: str) -> None:
    """A wrong agent config field is one line naming the field, before anything runs."""
    with pytest.raises(ConfigError) as info:
        load_agent_config(agent, None)
    assert str(info.value).startswith("agent config") and says in str(info.value)


def test_an_input_over_the_limit_is_refused_with_its_size(tmp_path: Path) -> None:
    """A config file over 512 KiB is refused up front, the message naming its size and the limit."""
    big = tmp_path / "big.json"
    big.write_bytes(orjson.dumps([{"name": "mock", "config": {"pad": "x" * MAX_INPUT_BYTES}}]))
    with pytest.raises(ConfigError, match=rf"is {big.stat().st_size} bytes; the limit is {MAX_INPUT_BYTES} bytes"):
        load_entries(None, big)
    with pytest.raises(ConfigError, match=r"--integrations-json is \d+ bytes; the limit"):
        load_entries(big.read_text(), None)


def test_a_file_that_is_not_utf8_is_named(tmp_path: Path) -> None:
    """Bytes that are not UTF-8 give one line naming the file and the byte, not a UnicodeDecodeError."""
    bad = tmp_path / "latin1.json"
    bad.write_bytes('[{"name": "mock", "config": {"x": "caf\xe9"}}]'.encode("latin-1"))
    with pytest.raises(ConfigError, match=r"--integrations-file .*latin1.json is not UTF-8 text \(byte 38\)"):
        load_entries(None, bad)


# -- credentials in urls ----------------------------------------------------------------------------------
@pytest.mark.parametrize(("url", "clean", "credentials"), [
    ("https://user:tok3n@host.example/x.git", "https://host.example/x.git", "user:tok3n"),
    ("https://tok3n@host.example/x.git", "https://host.example/x.git", "tok3n"),
    ("https://host.example/api?private_token=tok3n&page=2", "https://host.example/api?page=2", "tok3n"),
    ("https://u:p%40ss@host.example:8443/x", "https://host.example:8443/x", "u:p@ss"),
    ("https://host.example/x.git", "https://host.example/x.git", ""),
    ("/srv/repos/x.git", "/srv/repos/x.git", ""),
    ("git@host.example:org/x.git", "git@host.example:org/x.git", ""),
])
def test_split_url_separates_credentials(url: str, clean: str, credentials: str) -> None:
    """Userinfo and token query parameters come off the url; paths and scp-style addresses stay as they are."""
    split = split_url(url)
    assert (split.url, split.credentials) == (clean, credentials)
    assert clean_url(url) == clean


def test_scrub_text_removes_userinfo_from_messages() -> None:
    """A url with credentials inside free text (git's stderr) loses its userinfo."""
    text = "fatal: unable to access 'https://u:s3cret@host/x.git/': Could not resolve host"
    assert scrub_text(text) == "fatal: unable to access 'https://host/x.git/': Could not resolve host"


def test_mask_config_covers_secret_keys_and_url_credentials() -> None:
    """Values under secret-looking keys, at any depth, and the passwords inside any url are masked in logs;
    other values are not."""
    mask_config({"url": "https://bot:canary-url-pass@host/x", "nested": {"api_key": "canary-key-1"},
                 "repos": ["https://canary-tok-in-user@host/y.git"], "organization": "acme-org"})
    text = log.mask("canary-url-pass canary-key-1 canary-tok-in-user acme-org")
    assert text == "*** *** *** acme-org"


# -- secret-store references ------------------------------------------------------------------------------
def test_run_secrets_hold_configs_for_the_run_only(tmp_path: Path) -> None:
    """A command's configs go into the encrypted store as references and come back resolved; the parameters
    hold no value of the config, and the entries are gone after the run."""
    root = tmp_path / "root"
    entries = entries_from(orjson.dumps([{"id": "g", "name": "git", "config": {
        "repos": ["https://u:canary-77@host/x.git"], "unknown_key": "canary-88"}}]), "integrations")
    agent = load_agent_config('{"customer_id": "c1", "api_key": "canary-99"}', None)
    with RunSecrets(root) as run:
        params = run.integrations(entries)
        agent_ref = run.agent(agent)
        dumped = orjson.dumps([params, agent_ref]).decode()
        assert "canary" not in dumped and dumped.count("secret-store:run/") == 2
        assert "canary" not in (root / "secrets.json").read_text()  # encrypted at rest
        [resolved] = resolve_entries(params, root)
        assert resolved.display_key == "git@SOURCECODE@g"
        assert resolved.config["unknown_key"] == "canary-88"
        assert resolve_agent(agent_ref, root).api_key.get_secret_value() == "canary-99"
    assert open_store(root).names() == []
    assert stat.S_IMODE((root / "secret.key").stat().st_mode) == 0o600


def test_a_missing_reference_is_a_config_error(tmp_path: Path) -> None:
    """A reference the store does not hold is one clear line naming it."""
    with pytest.raises(ConfigError, match="cannot resolve secret-store:nope: no secret of that name"):
        resolve_entries([{"id": "1", "name": "mock", "config": "secret-store:nope"}], tmp_path)


def test_jira_picks_cloud_or_hosted_by_host() -> None:
    """The backend's `jira` is jira-cloud for Atlassian's hosts (the OAuth gateway included), else jira-hosted."""
    from pinpoint_agent.config import backend_name

    names = [backend_name("jira", {"url": u}) for u in ("https://acme.atlassian.net", "https://x.jira.com",
                                                         "https://api.atlassian.com/ex/jira/1", "https://jira.corp")]
    assert names == ["jira-cloud", "jira-cloud", "jira-cloud", "jira-hosted"]
    assert backend_name("github", {"url": "https://acme.atlassian.net"}) == "github"


def test_inputs_left_by_a_killed_command_are_dropped_later(tmp_path: Path) -> None:
    """A command killed before it dropped its inputs leaves them encrypted in the store; a later command drops
    those older than a week and keeps younger ones (a command may still be running)."""
    root = tmp_path / "root"
    store = open_store(root)
    store.put("run/1000-old/mock-1", "{}")  # started in 1970: stale
    young = RunSecrets(root)
    young.put("mock-2", {})
    store.put("github-1.api_key", "kept")  # not a run's entry: never dropped
    with RunSecrets(root):
        pass
    assert open_store(root).names() == sorted(["github-1.api_key", f"run/{young.run}/mock-2"])
