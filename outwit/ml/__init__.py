"""Torch only: data sources, preprocessing, the quick guess's strokes, training and evaluation, the fast round's upper
layers, checkpoints, the serving copy, attacks, adversarial training and robustness. No Gradio, no Hub, no threads
of the app."""
