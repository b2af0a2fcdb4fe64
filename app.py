"""Outwit: draw a digit, fool the model, save it; every N saved drawings the model retrains in the background.

`python app.py` reads the configuration from the environment, starts the services (`outwit/services.py`), builds
the page (`outwit/ui/page.py`) and serves it on port 7860 until it is stopped.
"""
from __future__ import annotations

import logging
import signal
import sys

import torch

from outwit.config import Config
from outwit.services import start_services
from outwit.ui.page import build_demo, launch


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for client in ("httpx", "httpx2"):  # the Hub client's: one line per request otherwise
        logging.getLogger(client).setLevel(logging.WARNING)
    config = Config.from_env()
    torch.set_num_threads(1)  # one image per request is fastest on one core; a round trains beside it
    services = start_services(config)
    demo = build_demo(config, services)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # a stopping Space: run the `finally` below
    try:
        launch(demo, config)
    finally:  # Ctrl+C or the platform stopping the app (then wiping its disk): the last examples go up first
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a second SIGTERM must not cut the stop short
        demo.close()  # no new requests; those under way finish
        services.stop()


if __name__ == "__main__":
    main()
