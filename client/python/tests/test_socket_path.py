"""Socket discovery: the rule of PROTOCOL.md §2.1, as the Rust client's socket_path tests."""

from avp_agent._socket_path import from_env, resolve


def env(**pairs):
    return pairs.get


def test_avp_sock_wins():
    assert from_env(env(AVP_SOCK="/x/s.sock", XDG_RUNTIME_DIR="/run/user/1"), 1) == "/x/s.sock"


def test_xdg_runtime_dir_when_absolute():
    assert from_env(env(XDG_RUNTIME_DIR="/run/user/1000"), 1000) == "/run/user/1000/avp/agent.sock"


def test_relative_or_empty_runtime_dir_falls_back_to_tmp():
    for pairs in ({"XDG_RUNTIME_DIR": "run/user"}, {"XDG_RUNTIME_DIR": ""}, {"AVP_SOCK": ""}, {}):
        assert from_env(pairs.get, 4242) == "/tmp/avp-4242/agent.sock"


def test_explicit_path_beats_everything():
    assert resolve("/given.sock", {"AVP_SOCK": "/env.sock"}) == "/given.sock"
    assert resolve(None, {"AVP_SOCK": "/env.sock"}) == "/env.sock"
