import pytest
import torch

import data

torch.set_num_threads(2)


@pytest.fixture(scope="session")
def mnist_sample_test() -> data.Digits:
    return data.load_sample("test")


@pytest.fixture(scope="session")
def mnist_sample_train() -> data.Digits:
    return data.load_sample("train")

import os

# The Hub tests talk to a local server; the client must not try its xet transfer path or phone home.
os.environ.setdefault("HF_HUB_DISABLE_XET", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
