"""Configuration: read from the environment once, cast, validated, then passed around frozen."""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Mapping

DATA_SOURCES = ("auto", "sample", "mnist")
TUNES = ("upper", "all")  # what a round trains: the layers above a fixed trunk, or every layer (rounds.Recipe)
PRECISIONS = ("int8", "float32")  # what serves the page's guesses (serving.py)
ROUND_RUNNERS = ("local", "replica", "none")  # who runs rounds: this process; the lease's holder; another process
ROUNDS_IN = ("process", "thread")  # where rounds compute: a process of their own, or the web process (runner.py)
SIGN_INS = ("on", "off")  # Sign in with Hugging Face; SIGN_IN=auto (the default) is "on" where the Space set OAuth up
SECRETS = ("hf_token", "admin_password")  # read as Secret: never shown
TRUE, FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


class Secret:
    """A value that never shows: `repr`, `str` and f-strings give asterisks; `reveal()` gives the value."""

    def __init__(self, value: str):
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "'**********'"

    __str__ = __repr__

    def __eq__(self, other) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


class ConfigError(ValueError):
    """A variable is set to a value that cannot be used; the message names the variable and the value."""


@dataclass(frozen=True)
class Config:
    model_path: Path = Path("models/base.safetensors")  # the checkpoint served when no round has been promoted
    data_dir: Path = Path("data_mnist")  # runtime data: real MNIST files, collected examples, rounds
    mnist_data: str = "auto"  # MNIST source for replay and evaluation: auto, sample or mnist
    host: str = "127.0.0.1"  # 0.0.0.0 on Spaces, set there by the platform
    port: int = 7860
    retrain_every: int = 10  # fooling examples per round
    holdout_every: int = 5  # one in this many flagged examples is held out as the adversarial test set
    gate_margin: float = 1.0  # percentage points of MNIST test accuracy a new round may lose and still be promoted
    round_steps: int = 80  # fine-tuning steps per round
    round_tune: str = "upper"  # "upper": train the layers above a fixed trunk (fast); "all": every layer
    serve_precision: str = "int8"  # the page's guesses: from an int8 copy of the model (2× faster), or float32
    rounds_in: str = "process"  # "process": rounds compute beside the web process; "thread": in it (~700 MB less)
    gallery_size: int = 12  # latest fooling drawings shown
    robust_eps: float = 0.1  # each round's robust accuracy: PGD-20 at this L∞ budget; 0: not measured
    robust_size: int = 100  # MNIST test images that robust accuracy is measured on (a fixed subset)
    round_attack_eps: float = 0.0  # > 0: a round also trains on PGD versions of the adversarial examples
    votes_required: int = 0  # agreeing votes an example needs before it is trained on; 0: the flag is trusted
    votes_limit: int = 0  # votes after which a split vote is settled by the majority; 0: 2 × VOTES_REQUIRED + 1
    validator_trust: float = 0.0  # a validator agreeing with the outcome less often counts only once seconded; 0: off
    sign_in: str = "off"  # "on": a "Sign in with Hugging Face" button (SIGN_IN=auto: on where OAUTH_CLIENT_ID is set)
    require_sign_in: bool = False  # saving and voting need a signed-in person
    round_goal: str = ""  # the owner's goal for the round, shown on the page ("fool it with 4s")
    flags_per_session: int = 100  # examples one visitor's session may save, against spam; 0: no limit
    admin_password: Secret | None = None  # set: the Admin tab (start a round, roll back, hide an example) exists
    hf_token: Secret | None = None  # a Space secret; with dataset_repo, examples are synced to the Hub
    dataset_repo: str = ""  # e.g. "user/outwit-adversarial"; empty: local only
    model_repo: str = ""  # e.g. "user/outwit-model": promoted rounds are published there; empty: not published
    sync_every: float = 1.0  # minutes between pushes of new examples to the dataset repo
    hub_endpoint: str = ""  # the Hub's address; empty: huggingface_hub's default (https://huggingface.co)
    replica: str = ""  # this process's shard name in the dataset; empty: made up at start
    round_runner: str = "local"  # who runs rounds: "local" (this process), "replica" (the lease's holder), "none"
    runner_lease: float = 10.0  # minutes the round runner's lease lasts unless renewed (a third before its end)
    space_id: str = ""  # "owner/name" of the Space this runs in, set there by the platform; cards link to it

    def __post_init__(self):
        for name, ok, rule in (
            ("port", 0 < self.port < 65536, "a port number from 1 to 65535"),
            ("retrain_every", self.retrain_every >= 1, "at least 1"),
            ("holdout_every", self.holdout_every >= 2, "at least 2"),
            ("gate_margin", 0 <= self.gate_margin <= 100, "from 0 to 100 (percentage points)"),
            ("round_steps", self.round_steps >= 1, "at least 1"),
            ("round_tune", self.round_tune in TUNES, f"one of {', '.join(TUNES)}"),
            ("serve_precision", self.serve_precision in PRECISIONS, f"one of {', '.join(PRECISIONS)}"),
            ("rounds_in", self.rounds_in in ROUNDS_IN, f"one of {', '.join(ROUNDS_IN)}"),
            ("gallery_size", 0 <= self.gallery_size <= 100, "from 0 to 100"),
            ("robust_eps", 0 <= self.robust_eps <= 1, "from 0 (off) to 1"),
            ("robust_size", self.robust_size >= 1, "at least 1"),
            ("round_attack_eps", 0 <= self.round_attack_eps <= 1, "from 0 (off) to 1"),
            ("votes_required", 0 <= self.votes_required <= 100, "from 0 (trust the flag) to 100"),
            ("votes_limit", self.votes_limit == 0 or max(self.votes_required, 1) <= self.votes_limit <= 201,
             "0 (twice VOTES_REQUIRED, and one) or from VOTES_REQUIRED to 201"),
            ("validator_trust", 0 <= self.validator_trust < 1, "from 0 (off) to below 1 (a share of votes)"),
            ("sign_in", self.sign_in in SIGN_INS, "auto, on or off"),
            ("require_sign_in", not self.require_sign_in or self.sign_in == "on",
             "off while SIGN_IN is off (nobody could sign in)"),
            ("round_goal", len(self.round_goal) <= 120 and self.round_goal.isprintable(),
             "at most 120 printable characters"),
            ("flags_per_session", self.flags_per_session >= 0, "0 (no limit) or more"),
            ("mnist_data", self.mnist_data in DATA_SOURCES, f"one of {', '.join(DATA_SOURCES)}"),
            ("sync_every", self.sync_every > 0, "more than 0 (minutes)"),
            ("dataset_repo", not self.dataset_repo or _is_repo_id(self.dataset_repo), "empty or 'owner/name'"),
            ("model_repo", not self.model_repo or _is_repo_id(self.model_repo), "empty or 'owner/name'"),
            ("replica", not self.replica or _is_plain_name(self.replica), "letters, digits, '-' and '_'"),
            ("space_id", not self.space_id or _is_repo_id(self.space_id), "empty or 'owner/name'"),
            ("round_runner", self.round_runner in ROUND_RUNNERS, f"one of {', '.join(ROUND_RUNNERS)}"),
            ("round_runner", self.round_runner == "local" or (self.model_publishing and self.hub_sync),
             "'local' while HF_TOKEN, DATASET_REPO or MODEL_REPO is unset (other runners' rounds come through them)"),
            ("runner_lease", self.runner_lease > 0 and (self.round_runner != "replica"
                                                        or self.runner_lease >= 3 * self.sync_every),
             "at least 3 × SYNC_EVERY (minutes: its holder renews it on a tick, when a third is left)"),
        ):
            if not ok:
                raise ConfigError(f"{ENV[name]}='{getattr(self, name)}' must be {rule}")

    @property
    def hub_sync(self) -> bool:
        """Both a token and a dataset repo: examples go to the Hub. Otherwise the app runs local-only."""
        return bool(self.hf_token and self.dataset_repo)

    @property
    def model_publishing(self) -> bool:
        return bool(self.hf_token and self.model_repo)

    @property
    def store_dir(self) -> Path:
        return self.data_dir / "adversarial"

    @property
    def rounds_dir(self) -> Path:
        return self.data_dir / "rounds"

    @property
    def reviews_dir(self) -> Path:
        return self.data_dir / "reviews"

    @property
    def tries_dir(self) -> Path:
        return self.data_dir / "tries"

    @property
    def votes_cap(self) -> int:
        """Votes after which a split vote is settled by the majority (VOTES_LIMIT, or its default)."""
        return self.votes_limit or 2 * max(self.votes_required, 1) + 1

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> "Config":
        environ = os.environ if environ is None else environ
        values = {}
        for f in fields(cls):
            raw = environ.get(ENV[f.name], "").strip()
            if f.name == "sign_in" and raw.lower() in ("", "auto"):
                # a Space whose README says `hf_oauth: true` is given its OAuth app's id
                raw = "on" if environ.get("OAUTH_CLIENT_ID") else ""
            if raw:
                kind = Secret if f.name in SECRETS else str if f.default == "" else type(f.default)
                values[f.name] = _cast(ENV[f.name], raw, kind)
        config = cls(**values)
        if config.sign_in == "on" and not environ.get("OAUTH_CLIENT_ID") and not config.hf_token:
            raise ConfigError("SIGN_IN='on' off a Space needs HF_TOKEN: Gradio then signs everyone in as that "
                              "token's Hub account (a mock, to try the page), as there is no OAuth app to ask")
        return config


ENV = {
    "model_path": "MODEL_PATH", "data_dir": "DATA_DIR", "mnist_data": "MNIST_DATA", "host": "GRADIO_SERVER_NAME",
    "port": "GRADIO_SERVER_PORT", "retrain_every": "RETRAIN_EVERY", "holdout_every": "HOLDOUT_EVERY",
    "gate_margin": "GATE_MARGIN", "round_steps": "ROUND_STEPS", "round_tune": "ROUND_TUNE",
    "serve_precision": "SERVE_PRECISION", "rounds_in": "ROUNDS_IN",
    "gallery_size": "GALLERY_SIZE",
    "robust_eps": "ROBUST_EPS", "robust_size": "ROBUST_SIZE", "round_attack_eps": "ROUND_ATTACK_EPS",
    "votes_required": "VOTES_REQUIRED", "flags_per_session": "FLAGS_PER_SESSION", "admin_password": "ADMIN_PASSWORD",
    "hf_token": "HF_TOKEN", "dataset_repo": "DATASET_REPO", "model_repo": "MODEL_REPO", "sync_every": "SYNC_EVERY",
    "hub_endpoint": "HF_ENDPOINT", "replica": "REPLICA_ID", "space_id": "SPACE_ID", "round_runner": "ROUND_RUNNER",
    "runner_lease": "RUNNER_LEASE", "votes_limit": "VOTES_LIMIT", "validator_trust": "VALIDATOR_TRUST",
    "sign_in": "SIGN_IN", "require_sign_in": "REQUIRE_SIGN_IN", "round_goal": "ROUND_GOAL",
}


def _is_plain_name(value: str) -> bool:
    return bool(re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}", value))


def _is_repo_id(value: str) -> bool:
    return bool(re.fullmatch(r"[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*", value))


def _cast(name: str, raw: str, kind: type):
    if kind is bool:
        if raw.lower() not in TRUE + FALSE:
            raise ConfigError(f"{name}={raw!r} is not one of {', '.join(TRUE + FALSE)}")
        return raw.lower() in TRUE
    try:
        return kind(raw)
    except ValueError:
        kind_name = {int: "whole number", float: "number"}.get(kind, kind.__name__)
        raise ConfigError(f"{name}={raw!r} is not a {kind_name}") from None
