import pytest

from outwit.ml import checkpoints
from outwit.ml.serving import Predictor
from outwit.sim.drawings import client_payload, fooling_examples
from tests.paths import MODELS


@pytest.fixture(scope="module")
def fooling_payloads(tmp_path_factory):
    """Six drawings the shipped model gets wrong, as gradio_client sends them: (payload, the digit drawn)."""
    base, _ = checkpoints.load(MODELS / "base.safetensors")
    folder = tmp_path_factory.mktemp("drawings")
    examples = fooling_examples(Predictor(base).predict, 6)
    return [(client_payload(drawing, folder / str(i)), digit) for i, (drawing, digit, _) in enumerate(examples)]
