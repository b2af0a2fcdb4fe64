"""The Hugging Face Hub: the dataset repo's sync, layout and restore; promoted rounds published to a model repo; the
dataset and model cards. No Gradio."""
