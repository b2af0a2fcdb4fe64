"""What a public Space serves of its data folder: the drawings the page shows, as Gradio's own copies, and nothing
else (rows with session hashes and names, review events, rounds, checkpoints, hidden drawings)."""
import shutil
from pathlib import Path

import httpx
import pytest
from gradio_client import Client

from outwit.config import Config
from outwit.sim.drawings import client_payload, fooling_examples
from tests.paths import MODELS
from tests.running_app import running_app


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    root = tmp_path_factory.mktemp("exposure")
    config = Config(data_dir=root / "data", retrain_every=1000, mnist_data="sample", robust_eps=0)
    with running_app(config, measured=True) as (url, services):
        yield url, services, config


def test_only_the_drawings_the_page_shows_are_served(served, tmp_path):
    url, services, config = served
    author, other = Client(url, verbose=False), Client(url, verbose=False)
    ids = []
    for i, (drawing, digit, _) in enumerate(fooling_examples(services.predictor.predict, 4)):
        ids.append(author.predict(client_payload(drawing, tmp_path / str(i)), digit, "Ada", False,
                                  api_name="/flag")[1])
    author.predict(ids[1], api_name="/retract")
    other.predict(ids[2], "not a digit", api_name="/report")
    services.reviews.hide(ids[3], reason="an admin's call")
    image, _, shown = other.predict("", api_name="/validate_next")
    assert shown == ids[0] and Path(image).read_bytes()  # the one visible drawing: served, as a copy

    store = services.store
    rows = [store.row(example_id) for example_id in ids]
    checkpoint = config.rounds_dir / store.shard / "round-0001.safetensors"
    shutil.copy(MODELS / "base.safetensors", checkpoint)  # as a promoted round leaves one
    private = [*config.data_dir.rglob("*.jsonl"), checkpoint,
               *(store.path_of(row, column) for row in rows for column in ("file_name", "input_file_name"))]
    assert {p.name for p in private} >= {"metadata.jsonl", "reviews.jsonl", "rounds.jsonl"}
    for path in private:
        for asked in (str(path), str(path.resolve())):
            response = httpx.get(url + "gradio_api/file=" + asked, timeout=30)
            assert response.status_code in (403, 404), f"{asked} was served"
