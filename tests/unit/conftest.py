import pytest

from outwit.ml import checkpoints
from tests.paths import MODELS


@pytest.fixture(scope="module")
def base():
    """The shipped CNN, as rounds start from it."""
    return checkpoints.load(MODELS / "base.safetensors")[0]
