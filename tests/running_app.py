"""The app served on a free loopback port for a test module, as `python app.py` serves it; and Gradio's sign-in mock
made to work here."""
import contextlib
import dataclasses

import huggingface_hub.hf_api
import pytest

from outwit.config import Config
from outwit.services import start_services
from outwit.sim.hub_server import FakeHub
from outwit.ui.page import build_demo, launch


@contextlib.contextmanager
def running_app(config: Config, *, measured: bool = False):
    """Yields (url, services). `measured`: first wait until the base model is measured, as a first visit sees it.

    Rounds compute in a thread of the test's process (ROUNDS_IN=thread): a round process for every app a test
    starts cost the suite minutes. The round process is tested where the app runs as `python app.py`
    (test_crash.py, test_stop.py, test_crowd.py) and in tests/unit/test_runner.py."""
    services = start_services(dataclasses.replace(config, rounds_in="thread"))
    if measured:
        assert services.worker.wait_idle(60), "the base model was not measured in time"
    demo = build_demo(config, services)
    _, url, _ = launch(demo, config, server_port=None, prevent_thread_lock=True, quiet=True)
    try:
        yield url, services
    finally:
        services.worker.stop()
        demo.close()


@contextlib.contextmanager
def hub_sign_in_mock():
    """What an app with SIGN_IN=on needs off a Space, where Gradio mocks the sign-in as the account of the machine's
    token: a token (HF_TOKEN), and a Hub to say whose it is (`huggingface_hub.whoami`, which Gradio calls: the local
    Hub, whose account is `FakeHub.account`). Yields the local Hub."""
    hub = FakeHub().start()
    patch = pytest.MonkeyPatch()
    patch.setenv("HF_TOKEN", "hf_local_token")
    patch.setattr(huggingface_hub.hf_api.api, "endpoint", hub.endpoint)
    try:
        yield hub
    finally:
        patch.undo()
        hub.stop()
