"""Deployable as it is: the README's front matter is what Spaces reads to run the app, and the app needs nothing
that `pip install -r requirements.txt` (what Spaces runs) does not install."""
import json
import subprocess
import sys
from importlib import metadata

import gradio
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.paths import ROOT

SPACE_COLOURS = {"red", "yellow", "green", "blue", "indigo", "purple", "pink", "gray"}


def front_matter() -> dict:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert text.startswith("---\n"), "the README must open with the Space's front matter"
    return yaml.safe_load(text.split("---\n", 2)[1])


def requirements(name: str = "requirements.txt") -> list[Requirement]:
    lines = (ROOT / name).read_text(encoding="utf-8").splitlines()
    return [Requirement(line.split("#")[0]) for line in lines if line.split("#")[0].strip()
            and not line.startswith("-")]


def test_the_front_matter_tells_spaces_how_to_run_the_app():
    space = front_matter()
    gradio_pin = next(r for r in requirements() if r.name == "gradio")
    assert space["sdk"] == "gradio" and str(gradio_pin.specifier) == f"=={space['sdk_version']}"
    assert space["sdk_version"] == gradio.__version__  # and it is the one the suite runs
    assert (ROOT / space["app_file"]).is_file() and space["python_version"] == "3.11"
    assert space["title"] and space["emoji"] and {space["colorFrom"], space["colorTo"]} <= SPACE_COLOURS
    assert 0 < len(space["short_description"]) <= 60 and space["license"]
    assert {"dynamic-adversarial-data-collection", "human-in-the-loop", "mnist"} <= set(space["tags"])


def installed_with(wanted: list[Requirement]) -> set[str]:
    """The distributions pip installs for `wanted`: them and what they require, as this environment resolved them."""
    names, todo = set(), [r.name for r in wanted]
    while todo:
        name = canonicalize_name(todo.pop())
        if name in names:
            continue
        names.add(name)
        try:
            requires = metadata.distribution(name).requires or []
        except metadata.PackageNotFoundError:
            continue
        for line in requires:
            needed = Requirement(line)
            if needed.marker is None or needed.marker.evaluate({"extra": ""}):
                todo.append(needed.name)
    return names


# Run with the suite's extra packages hidden: the app is started, its page built and a drawing guessed.
WITHOUT_EXTRAS = """
import importlib.abc, json, sys, tempfile
from importlib import metadata
allowed = set(json.loads(sys.argv[1]))
owners = metadata.packages_distributions()
hidden = []

class HideExtras(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        dists = {d.lower().replace("_", "-") for d in owners.get(name.split(".")[0], [])}
        if dists and not dists & allowed:
            hidden.append(name)
            raise ModuleNotFoundError(f"hidden: {name} is not installed by requirements.txt", name=name)
        return None

sys.meta_path.insert(0, HideExtras())
from pathlib import Path
import app, flagging
from outwit.config import Config
from outwit.services import start_services
from outwit.sim.drawings import draw_sketch
from outwit.ui.page import build_demo
config = Config(data_dir=Path(tempfile.mkdtemp()) / "data", mnist_data="sample", robust_eps=0)
services = start_services(config)
build_demo(config, services)
guess = int(services.predictor.predict(draw_sketch(3)).argmax())
services.stop()
print(json.dumps({"guess": guess, "hidden": sorted(set(hidden))}))
"""


def test_serving_the_app_needs_only_what_requirements_txt_installs():
    """The suite's environment also has the test packages and torchattacks (the attack cross-check): with them
    hidden, as a Space's environment lacks them, the app still starts, builds its page and guesses."""
    allowed = sorted(installed_with(requirements()))
    done = subprocess.run([sys.executable, "-c", WITHOUT_EXTRAS, json.dumps(allowed)], cwd=ROOT, capture_output=True,
                          text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["guess"] == 3
    assert {"pytest", "torchattacks", "playwright", "datasets"} & installed_here() - set(allowed)  # hidden, there


def installed_here() -> set[str]:
    return {canonicalize_name(d.metadata["Name"]) for d in metadata.distributions()}
