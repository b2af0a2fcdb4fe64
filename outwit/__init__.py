"""Outwit's code, in layers; each imports only from the layers below it (and `model.py`, the networks).

    ui/, sim/, cli.py   the page and its tabs; simulated visitors and Spaces; the command line (trainer.py)
    services.py         the one place that starts and wires what the page talks to
    hub/                the Hugging Face Hub: dataset sync and restore, model publishing, cards
    dadc/               the collection loop: the store, who a visitor is, reviews, rounds, the worker, standings
    ml/                 torch only: data, preprocessing, training, serving, attacks, robustness
    config.py, storage.py, text.py   configuration from the environment; atomic files and append-only JSON
                        lines; how a message quotes what a person sent
"""
