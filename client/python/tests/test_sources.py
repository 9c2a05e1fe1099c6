"""get_secret / get_secrets_backend: AVP_SOURCE=agent|env|dir with exactly the rules of the
Rust avp_client::get_secret (client/src/sources.rs and tests/tests/client/sources.rs)."""

import pytest

import avp_agent
from avp_agent import errors


@pytest.fixture
def clean_env(monkeypatch):
    for key in ("AVP_SOURCE", "AVP_WORKSPACE", "AVP_SOCK", "AVP_SECRETS_DIR"):
        monkeypatch.delenv(key, raising=False)
    return monkeypatch


def test_the_agent_is_the_default_source(clean_env):
    assert avp_agent.get_secrets_backend({}).describe() == "workspace `default` of the agent"
    source = avp_agent.get_secrets_backend({"AVP_SOURCE": "agent", "AVP_WORKSPACE": "team/x"})
    assert source.describe() == "workspace `team/x` of the agent"
    assert avp_agent.get_secrets_backend({"AVP_SOURCE": ""}).describe().endswith("of the agent")


def test_from_the_agent_in_avp_workspace(shared_agent, clean_env):
    with shared_agent.client() as c:
        c.store(c.authenticate("default"), "DB_PASSWORD", b"default\n")
        c.store(c.authenticate("svc/app"), "DB_PASSWORD", b"\xffapp")
    clean_env.setenv("AVP_SOCK", shared_agent.socket)
    assert avp_agent.get_secret("DB_PASSWORD") == "default\n"
    clean_env.setenv("AVP_SOURCE", "agent")
    clean_env.setenv("AVP_WORKSPACE", "svc/app")
    assert avp_agent.get_secret_bytes("DB_PASSWORD") == b"\xffapp"
    with pytest.raises(errors.AVPError, match="not UTF-8 text — read it with get_secret_bytes"):
        avp_agent.get_secret("DB_PASSWORD")
    clean_env.delenv("AVP_WORKSPACE")
    with pytest.raises(KeyError) as missing:
        avp_agent.get_secret("NOPE")
    assert str(missing.value) == (
        "SECRET_NOT_FOUND: no secret named `NOPE` in workspace `default` of the agent — store it there first"
    )
    # The backend object is the pluggable-secrets-backend shape.
    backend = avp_agent.get_secrets_backend()
    assert backend.get_secret("DB_PASSWORD") == "default\n"


def test_no_agent_is_not_a_missing_secret(tmp_path, clean_env):
    clean_env.setenv("AVP_SOCK", str(tmp_path / "agent.sock"))
    with pytest.raises(errors.NoAgentError, match="no agent answers on"):
        avp_agent.get_secret("DB_PASSWORD")


def test_from_the_environment(clean_env):
    clean_env.setenv("AVP_SOURCE", "env")
    clean_env.setenv("API_TOKEN", "tok en\n")
    assert avp_agent.get_secret("API_TOKEN") == "tok en\n"
    clean_env.setenv("API_TOKEN", "")
    assert avp_agent.get_secret("API_TOKEN") == "", "an empty variable is an empty value"
    clean_env.delenv("API_TOKEN")
    with pytest.raises(errors.SecretNotFoundError) as missing:
        avp_agent.get_secret("API_TOKEN")
    assert missing.value.message == "no secret named `API_TOKEN` in the environment — store it there first"


def test_from_a_directory(tmp_path, clean_env):
    (tmp_path / "TLS_KEY").write_bytes(b"-----KEY-----\n\x00")
    clean_env.setenv("AVP_SOURCE", "dir")
    clean_env.setenv("AVP_SECRETS_DIR", str(tmp_path))
    assert avp_agent.get_secret_bytes("TLS_KEY") == b"-----KEY-----\n\x00"
    assert avp_agent.get_secret("TLS_KEY") == "-----KEY-----\n\x00"
    with pytest.raises(errors.SecretNotFoundError) as missing:
        avp_agent.get_secret("OTHER")
    assert missing.value.message.startswith(f"no secret named `OTHER` in directory {tmp_path}")
    clean_env.delenv("AVP_SECRETS_DIR")
    with pytest.raises(errors.SourceConfigError, match=r"^AVP_SOURCE=dir needs AVP_SECRETS_DIR"):
        avp_agent.get_secret("TLS_KEY")


def test_names_are_checked_before_any_lookup(tmp_path, clean_env):
    (tmp_path / "inner").mkdir()
    (tmp_path / "inner" / "x").write_bytes(b"outside")
    clean_env.setenv("AVP_SOURCE", "dir")
    clean_env.setenv("AVP_SECRETS_DIR", str(tmp_path / "inner"))
    for bad in ("../etc/passwd", "inner/x", ".x", "not valid", ""):
        with pytest.raises(errors.InvalidNameError):
            avp_agent.get_secret(bad)
    clean_env.setenv("AVP_SOURCE", "env")
    with pytest.raises(errors.InvalidNameError) as invalid:
        avp_agent.get_secret("not valid")
    assert invalid.value.code == "INVALID_NAME"


def test_bad_settings_are_errors(clean_env):
    clean_env.setenv("AVP_SOURCE", "vault")
    with pytest.raises(errors.SourceConfigError, match="^AVP_SOURCE must be `agent`, `env` or `dir`"):
        avp_agent.get_secret("A")
    clean_env.setenv("AVP_SOURCE", "agent")
    clean_env.setenv("AVP_WORKSPACE", "a/../b")
    with pytest.raises(errors.InvalidWorkspaceError):
        avp_agent.get_secret("A")
