"""Where things are, for every kind of test."""
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent  # the repository
MODELS = ROOT / "models"  # the shipped checkpoints
ARTIFACTS = ROOT / "tests" / "artifacts"  # the browser tests' screenshots, for a person to look at
