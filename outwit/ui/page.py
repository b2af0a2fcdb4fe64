"""The page: a header, the visitor's name and sandbox, the tabs, and the status panel under them; and how it is served.

`build_demo(config, services)` builds it (for `app.py`, Spaces and tests); `launch(demo, config)` serves it as
`python app.py` does. Each tab has its own module; this one only lays them out and chains the panel's refresh to
what changes it.
"""
from __future__ import annotations

import os

import gradio as gr
from gradio.route_utils import FnIndexInferError
from starlette.middleware import Middleware

from outwit.config import Config
from outwit.services import Services
from outwit.ui import scripts
from outwit.ui.admin_tab import admin_tab
from outwit.ui.attack_tab import machine_adversary_tab
from outwit.ui.components import display_name_box, shown_until_signed_in, signed_in_name
from outwit.ui.drawing_tab import drawing_tab
from outwit.ui.http_limits import BodyLimit
from outwit.ui.panel import how_it_works, panel_handlers, status_panel
from outwit.ui.refusals import PageBlocks, unknown_endpoint
from outwit.ui.review_tabs import rounds_tab, validate_tab
from outwit.ui.routes import panel_route

MAX_UPLOAD = "1mb"  # a canvas's PNG layers are a few KB each: a bigger upload is not a drawing
PANEL_TICK_SECONDS = 5.0  # how often a page asks whether the panel changed
KEEP_ALIVE = 30  # seconds an idle connection is kept open: longer than the page's tick
MAX_REQUEST = 4 * 2**20  # bytes of any request's body: three uploads at most MAX_UPLOAD, and room to spare


def build_demo(config: Config, services: Services) -> gr.Blocks:
    with PageBlocks(title="Outwit: fool the digit model") as demo:
        seen_round = gr.State(None)  # the round and panel parts this page last showed, for refresh()
        gr.Markdown(how_it_works(config.retrain_every), elem_id="how-it-works")
        with gr.Row(equal_height=True):  # a column each: on a phone the sandbox goes under the name (side by side,
            with gr.Column(scale=3, min_width=240):  # in one form, its label wrapped a word per line)
                name = display_name_box()
            with gr.Column(scale=2, min_width=240):
                sandbox = gr.Checkbox(label="Sandbox: play without saving anything", elem_id="sandbox")
            needed = None
            if config.sign_in == "on":  # Gradio adds /login/huggingface and /logout (mocked off a Space)
                with gr.Column(scale=2, min_width=240):
                    gr.LoginButton(elem_id="login")
                    if config.require_sign_in:
                        needed = gr.Markdown("Sign in to save drawings and to vote: anyone may draw and play.",
                                             elem_id="sign-in-needed")
        with gr.Tabs():
            with gr.Tab("Fool it by drawing", id="draw"):
                drawing = drawing_tab(services, name, sandbox)
            with gr.Tab("Machine adversary", id="machine", elem_id="machine-tab") as machine_tab:
                saved_attack = machine_adversary_tab(services, name, sandbox)
            validate_tab(services, name)
            rounds_tab(services)
            if config.admin_password:
                admin_tab(services, config.admin_password)
        panel_outputs = status_panel()
        panel, refresh, status, versions = panel_handlers(services, panel_outputs)

        shows = [*panel_outputs, seen_round]
        sent = dict(api_visibility="private", postprocess=False)  # the panel's values come postprocessed (panel.py)
        drawing.saved.then(panel, seen_round, shows, **sent)
        drawing.retracted.success(panel, seen_round, shows, **sent)
        saved_attack.success(panel, seen_round, shows, **sent)
        gr.api(status, api_name="status", queue=False)
        # Every 5 s the page asks the plain route what the panel is at (outwit/ui/routes.py), and only when a part
        # changed does it click this, for the parts that changed (at most every 15 s, unless a round landed).
        panel_refresh = gr.Button("refresh", visible="hidden", elem_id="panel-refresh")
        panel_refresh.click(refresh, seen_round, shows, show_progress="hidden", **sent)
        gr.Timer(PANEL_TICK_SECONDS).tick(None, js=scripts.PANEL_TICK)
        demo.load(refresh, seen_round, shows, **sent)
        if config.sign_in == "on":  # a signed-in person: their Hub name, and their saved drawings from every visit
            demo.load(signed_in_name, None, name, api_visibility="private")
            if needed is not None:
                demo.load(shown_until_signed_in, None, needed, api_visibility="private")
            demo.load(drawing.own[0], None, drawing.own[1], api_visibility="private")
        demo.load(None, js=scripts.SELECT_BRUSH)
        demo.load(None, js=scripts.RECORD_STROKES)
        demo.load(None, js=scripts.label_elements())  # names for the canvases and plots, for screen readers
        machine_tab.select(None, js=scripts.SELECT_BRUSH)
    demo.plain_routes = [*drawing.routes, panel_route(versions)]  # served beside Gradio's by launch()
    return demo


def launch(demo: gr.Blocks, config: Config, **options):
    """Queue and serve the page as `python app.py` does; tests pass `server_port=None, prevent_thread_lock=True`.

    No `allowed_paths`: nothing of the data folder is served as it is (its rows hold session hashes and names, the
    checkpoints are the Hub's to publish); a drawing the page shows goes out as Gradio's own copy of it. No run
    history: Gradio would keep each event's inputs in the visitor's browser, the admin password among them."""
    # Gradio's queue recomputes its analytics (a pandas frame over its last 10,000 events) after every event by
    # default: 18% of the web side's busy CPU under a crowd of 100 (py-spy, bench/crowd.py). Once per 1,000 events.
    os.environ.setdefault("GRADIO_ANALYTICS_CACHE_FREQUENCY", "1000")
    options = {"server_name": config.host, "server_port": config.port, "max_file_size": MAX_UPLOAD,
               "head": scripts.head(), "css_paths": [scripts.PAGE_CSS], "run_history": False,
               "app_kwargs": {"middleware": [Middleware(BodyLimit, max_bytes=MAX_REQUEST)],
                              "routes": list(getattr(demo, "plain_routes", [])),  # matched before Gradio's own
                              "exception_handlers": {FnIndexInferError: unknown_endpoint}}, **options}
    wait = not options.get("prevent_thread_lock", False)
    served = demo.queue(default_concurrency_limit=8).launch(**{**options, "prevent_thread_lock": True})
    # uvicorn closes a connection idle for 5 s, the page's tick: each tick's check then raced the close or opened a
    # new connection. Read by each new connection from the server's config.
    demo.server.config.timeout_keep_alive = KEEP_ALIVE
    if wait:
        demo.block_thread()
    return served
