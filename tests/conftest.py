import os
from pathlib import Path

# Set before anything imports huggingface_hub (it reads these at import): the Hub tests talk to a local server, and
# the client must not try its xet transfer path or phone home.
os.environ.setdefault("HF_HUB_DISABLE_XET", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import pytest  # noqa: E402
import torch  # noqa: E402

from outwit.ml import data  # noqa: E402
from outwit.sim.browser import CHROMIUM, FLAGS  # noqa: E402
from outwit.sim.hub_server import FakeHub  # noqa: E402

torch.set_num_threads(2)


@pytest.fixture(scope="session")
def mnist_sample_test() -> data.Digits:
    return data.load_sample("test")


@pytest.fixture(scope="session")
def mnist_sample_train() -> data.Digits:
    return data.load_sample("train")


@pytest.fixture
def hub():
    """A local server speaking the Hub's HTTP API, fresh for each test."""
    server = FakeHub().start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def browser():
    """Debian's Chromium, driven by Playwright (`playwright install` cannot download a browser here)."""
    from playwright.sync_api import sync_playwright

    assert Path(CHROMIUM).exists(), "Chromium is missing: `make test` installs it"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield browser
        browser.close()
