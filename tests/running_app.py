"""The app served on a free loopback port for a test module, as `python app.py` serves it."""
import contextlib

import app
from config import Config
from services import start_services


@contextlib.contextmanager
def running_app(config: Config, *, measured: bool = False):
    """Yields (url, services). `measured`: first wait until the base model is measured, as a first visit sees it."""
    services = start_services(config)
    if measured:
        assert services.worker.wait_idle(60), "the base model was not measured in time"
    demo = app.build_demo(config, services)
    _, url, _ = app.launch(demo, config, server_port=None, prevent_thread_lock=True, quiet=True)
    try:
        yield url, services
    finally:
        services.worker.stop()
        demo.close()
