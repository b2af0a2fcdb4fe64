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
