"""The app served on a free loopback port for a test module, as `python app.py` serves it."""
import contextlib
import dataclasses

from outwit.config import Config
from outwit.services import start_services
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
