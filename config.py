"""Configuration: read from the environment once, cast, validated, then passed around frozen."""
from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Mapping


class ConfigError(ValueError):
    """A variable is set to a value that cannot be used; the message names the variable and the value."""


@dataclass(frozen=True)
class Config:
    model_path: Path = Path("models/base.safetensors")  # MODEL_PATH: the checkpoint served at start
    data_dir: Path = Path("data_mnist")  # DATA_DIR: runtime data (real MNIST files, collected examples)
    host: str = "127.0.0.1"  # GRADIO_SERVER_NAME: 0.0.0.0 on Spaces, set there by the platform
    port: int = 7860  # GRADIO_SERVER_PORT

    ENV = {"model_path": "MODEL_PATH", "data_dir": "DATA_DIR", "host": "GRADIO_SERVER_NAME", "port": "GRADIO_SERVER_PORT"}

    def __post_init__(self):
        if not 0 < self.port < 65536:
            raise ConfigError(f"GRADIO_SERVER_PORT='{self.port}' must be a port number from 1 to 65535")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> "Config":
        environ = os.environ if environ is None else environ
        values = {}
        for f in fields(cls):
            name = cls.ENV[f.name]
            raw = environ.get(name)
            if raw is None or raw.strip() == "":
                continue
            values[f.name] = _cast(name, raw.strip(), type(f.default))
        return cls(**values)


def _cast(name: str, raw: str, kind: type):
    try:
        return kind(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a valid {kind.__name__}") from None
