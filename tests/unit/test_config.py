"""Configuration from the environment: defaults, casting, and bad values named."""
from pathlib import Path

import pytest

from outwit.config import Config, ConfigError


def test_defaults_without_environment():
    config = Config.from_env({})
    assert (config.model_path, config.data_dir, config.port) == (Path("models/base.safetensors"), Path("data_mnist"),
                                                                 7860)


def test_values_are_read_and_cast():
    config = Config.from_env({"GRADIO_SERVER_PORT": "8001", "DATA_DIR": "/tmp/x", "MODEL_PATH": "m.safetensors",
                              "GRADIO_SERVER_NAME": "0.0.0.0"})
    assert (config.port, config.data_dir, config.model_path, config.host) == (8001, Path("/tmp/x"),
                                                                                Path("m.safetensors"), "0.0.0.0")


@pytest.mark.parametrize("value", ["eighty", "0", "70000", "-1"])
def test_a_bad_port_names_the_variable_and_value(value):
    with pytest.raises(ConfigError, match=f"GRADIO_SERVER_PORT={value!r}"):
        Config.from_env({"GRADIO_SERVER_PORT": value})


def test_config_is_frozen():
    with pytest.raises(AttributeError):
        Config().port = 1


def test_retraining_variables_are_read():
    config = Config.from_env({"RETRAIN_EVERY": "3", "GATE_MARGIN": "0.5", "HOLDOUT_EVERY": "4", "ROUND_STEPS": "20",
                              "MNIST_DATA": "sample", "GALLERY_SIZE": "6"})
    assert (config.retrain_every, config.gate_margin, config.holdout_every, config.round_steps) == (3, 0.5, 4, 20)
    assert (config.mnist_data, config.gallery_size) == ("sample", 6)
    assert Config().serve_precision == "int8" and Config.from_env({"SERVE_PRECISION": "float32"}).serve_precision \
        == "float32"
    assert Config().rounds_in == "process" and Config.from_env({"ROUNDS_IN": "thread"}).rounds_in == "thread"
    assert config.store_dir == Path("data_mnist/adversarial") and config.rounds_dir == Path("data_mnist/rounds")


@pytest.mark.parametrize("name, value", [("RETRAIN_EVERY", "0"), ("RETRAIN_EVERY", "ten"), ("GATE_MARGIN", "-1.5"),
                                         ("HOLDOUT_EVERY", "1"), ("MNIST_DATA", "emnist"), ("ROUND_STEPS", "2.5"),
                                         ("ROBUST_EPS", "2.0"), ("ROBUST_SIZE", "0"), ("ROUND_ATTACK_EPS", "-0.1"),
                                         ("SERVE_PRECISION", "fp16"), ("ROUND_TUNE", "lower"),
                                         ("ROUNDS_IN", "gpu")])
def test_bad_retraining_values_name_the_variable(name, value):
    with pytest.raises(ConfigError, match=f"{name}='{value}'"):
        Config.from_env({name: value})


def test_attack_variables_are_read():
    config = Config.from_env({"ROBUST_EPS": "0.2", "ROBUST_SIZE": "50", "ROUND_ATTACK_EPS": "0.1"})
    assert (config.robust_eps, config.robust_size, config.round_attack_eps) == (0.2, 50, 0.1)
    assert (Config().robust_eps, Config().round_attack_eps) == (0.1, 0.0)  # measured; not trained on by default


def test_the_space_id_spaces_set_is_read_and_checked():
    assert Config.from_env({"SPACE_ID": "someone/outwit"}).space_id == "someone/outwit"
    with pytest.raises(ConfigError, match="SPACE_ID='not a repo'"):
        Config.from_env({"SPACE_ID": "not a repo"})


def test_the_security_variables_are_read_and_the_password_never_shows():
    config = Config.from_env({"ADMIN_PASSWORD": "hunter2-but-longer", "FLAGS_PER_SESSION": "25"})
    assert config.admin_password.reveal() == "hunter2-but-longer" and config.flags_per_session == 25
    assert "hunter2" not in repr(config) and "hunter2" not in str(config.admin_password)
    assert Config().admin_password is None and Config().flags_per_session == 100  # no admin tab; a limit
    with pytest.raises(ConfigError, match="FLAGS_PER_SESSION='-1'"):
        Config.from_env({"FLAGS_PER_SESSION": "-1"})


def test_round_runners_other_than_local_need_the_hub_and_a_lease_longer_than_three_ticks():
    hub = {"HF_TOKEN": "hf_x", "DATASET_REPO": "a/data", "MODEL_REPO": "a/model"}
    assert Config().round_runner == "local"
    assert Config.from_env({**hub, "ROUND_RUNNER": "none"}).round_runner == "none"
    for missing in hub:
        with pytest.raises(ConfigError, match="ROUND_RUNNER='replica'"):
            Config.from_env({**{k: v for k, v in hub.items() if k != missing}, "ROUND_RUNNER": "replica"})
    with pytest.raises(ConfigError, match="ROUND_RUNNER='elsewhere'"):
        Config.from_env({**hub, "ROUND_RUNNER": "elsewhere"})
    with pytest.raises(ConfigError, match="RUNNER_LEASE='2.0' must be at least 3 × SYNC_EVERY"):
        Config.from_env({**hub, "ROUND_RUNNER": "replica", "SYNC_EVERY": "1", "RUNNER_LEASE": "2"})
    assert Config.from_env({"SYNC_EVERY": "60"}).runner_lease == 10  # no lease taken: no rule


def test_sign_in_is_on_where_the_space_has_an_oauth_app_and_can_be_forced():
    assert Config.from_env({}).sign_in == "off"
    assert Config.from_env({"OAUTH_CLIENT_ID": "abc"}).sign_in == "on"  # a Space with `hf_oauth: true`
    assert Config.from_env({"OAUTH_CLIENT_ID": "abc", "SIGN_IN": "off"}).sign_in == "off"
    assert Config.from_env({"SIGN_IN": "on", "HF_TOKEN": "hf_x"}).sign_in == "on"  # Gradio's mock, as that account
    with pytest.raises(ConfigError, match="SIGN_IN='on' off a Space needs HF_TOKEN"):
        Config.from_env({"SIGN_IN": "on"})
    with pytest.raises(ConfigError, match="SIGN_IN='maybe' must be auto, on or off"):
        Config.from_env({"SIGN_IN": "maybe"})


@pytest.mark.parametrize("value, expected", [("1", True), ("true", True), ("YES", True), ("0", False),
                                             ("off", False)])
def test_require_sign_in_is_a_yes_or_no(value, expected):
    config = Config.from_env({"REQUIRE_SIGN_IN": value, "OAUTH_CLIENT_ID": "abc"})
    assert config.require_sign_in is expected


@pytest.mark.parametrize("environ, words", [
    ({"REQUIRE_SIGN_IN": "sure", "OAUTH_CLIENT_ID": "abc"}, "REQUIRE_SIGN_IN='sure' is not one of 1, true"),
    ({"REQUIRE_SIGN_IN": "1"}, "REQUIRE_SIGN_IN='True' must be off while SIGN_IN is off"),
    ({"VOTES_REQUIRED": "3", "VOTES_LIMIT": "2"}, "VOTES_LIMIT='2' must be 0"),
    ({"VALIDATOR_TRUST": "1"}, "VALIDATOR_TRUST='1.0' must be from 0 (off) to below 1"),
    ({"ROUND_GOAL": "x" * 121}, "ROUND_GOAL="),
])
def test_bad_people_settings_are_named(environ, words):
    with pytest.raises(ConfigError) as err:
        Config.from_env(environ)
    assert words in str(err.value)


def test_the_votes_limit_defaults_to_twice_the_votes_and_one():
    assert Config.from_env({"VOTES_REQUIRED": "3"}).votes_cap == 7
    assert Config.from_env({"VOTES_REQUIRED": "3", "VOTES_LIMIT": "4"}).votes_cap == 4
    assert Config.from_env({"ROUND_GOAL": "fool it with 4s"}).round_goal == "fool it with 4s"
