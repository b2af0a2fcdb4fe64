"""What the Hub shows people: the dataset card and the model card.

Links point at real places: the blog post Outwit grew from, the Space that collected the data when the app runs on
one (Spaces set `SPACE_ID`), and the dataset repo a model was trained on. Where an address is not known, the card
names the thing without a link rather than link to a placeholder.
"""
from __future__ import annotations

import json

from outwit.ml.checkpoints import HUB_CODE, HUB_CONFIG, HUB_WEIGHTS, CheckpointMeta
from outwit.ml.metrics import ADVERSARIAL, MNIST, ROBUST, SUITE, percent

HUB = "https://huggingface.co"
BLOG_POST = "https://huggingface.co/blog/mnist-adversarial"
DEFAULT_LICENSE = "cc-by-4.0"


def _outwit(endpoint: str | None, space_id: str | None) -> str:
    """"Outwit", linked to the Space it runs in when that is known."""
    return f"[Outwit]({(endpoint or HUB).rstrip('/')}/spaces/{space_id})" if space_id else "Outwit"


DATASET_CARD = """---
license: {license}
task_categories:
- image-classification
pretty_name: Outwit adversarial digits
configs:
- config_name: default
  data_files:
  - split: train
    path: "adversarial/train/*/*.parquet"
  - split: test
    path: "adversarial/test/*/*.parquet"
---
# Outwit: handwritten digits that fooled a model

Collected with {outwit}, an app for dynamic adversarial data collection (the idea of the blog post
["How to train your model dynamically using adversarial data"]({blog})): people draw a digit, a CNN trained on
MNIST guesses it, and the drawings it gets wrong are saved here with the digit the person drew.

## Fields

| field | meaning |
| --- | --- |
| `image` | the drawing as drawn: dark ink on white |
| `input` | the 28×28 MNIST-style image the model saw (white ink on black) |
| `source` | `drawn` by a person, or the attack that made the input (e.g. `pgd-40x1@0.1`: PGD, 40 steps, ε 0.1) |
| `label` | the digit the person drew (0–9): the true label |
| `guess` | the digit the serving round's model said, and `confidence` its probability |
| `round` | the round of the model that was fooled (0: the base model) |
| `split` | `train`, or `test`: one in five examples is held out as the adversarial test set and never trained on |
| `created` | when it was saved (UTC) |
| `session` | a short hash of the visitor's page session, or, signed in with Hugging Face, of their Hub name |
| `user` | the Hub username of a signed-in visitor, or the display name a visitor typed, if any |
| `id`, `seq`, `shard` | the example's id, its place among its shard's additions, and the app replica that wrote it |
| `extra` | the example's other fields, as JSON: the four below, on examples saved since they were kept |

`extra` holds, on newer examples (older ones lack them: read a missing one as empty):

| field | meaning |
| --- | --- |
| `identity` | how the person was known: `signed-in` (with Hugging Face: one person anywhere) or `session` |
| `target` | a targeted challenge met: the digit they made the model read it as ("your 3 as an 8": 8); -1: none |
| `strokes` | the pen strokes that drew it (Quick, Draw!'s raw format, below); empty when not drawn with the brush |
| `judged_by` | the models the person set out to fool and what each read it as (JSON text, below) |

`strokes` is JSON text: a list per stroke of `[[x0, x1, ...], [y0, y1, ...], [t0, t1, ...]]`, x and y in pixels of
the 280×280 canvas (top left 0, 0), t in ms since the drawing's first point. It is empty for a machine's example and
for a drawing changed with another tool (undo, the eraser, an upload), whose strokes no longer make it.

`judged_by` is JSON text too: a list of `{{"model", "guess", "confidence"}}`, one per model the person chose to fool
(`serving`, the round's model, with its `round`; or a fixed reference: `seed` the blog's small network, `base`,
`robust`, `vit`). Every one of them read the drawing as another digit than `label`; a drawing made to fool the
references alone may be one the serving model read right (its `guess` is then `label`).

```python
import json
extra = json.loads(ds["train"][0]["extra"] or "{{}}")
strokes = json.loads(extra.get("strokes") or "[]")  # e.g. [[[20, 21, ...], [40, 44, ...], [0, 16, ...]], ...]
judged_by = json.loads(extra.get("judged_by") or "[]")  # e.g. [{{"model": "vit", "guess": 8, "confidence": 0.6}}]
```

## Load it

```python
import datasets
ds = datasets.load_dataset("{repo_id}")
ds["train"][0]["image"], ds["train"][0]["label"]
```

Or, after `hf download {repo_id} --repo-type dataset --local-dir outwit`: `datasets.load_dataset("outwit")`.

## Layout

Each app replica writes its own folder (`<replica>`), so that replicas never overwrite each other.

| path | what |
| --- | --- |
| `adversarial/{{train,test}}/<replica>/pack-NNNNN.parquet` | the examples, 1,000 a pack, both images inside |
| `reviews/<replica>/reviews-NNNNN.jsonl` | votes, retractions and reports, one JSON line each, 10,000 a file |
| `rounds/<replica>/rounds-NNNNN.jsonl` | each retraining round: accuracies, promoted or not, the recipe |
| `rounds/<replica>/round-NNNN.safetensors` | the newest promoted models (earlier ones are in this repo's history) |

A pack stays under 10,000 entries a folder and 100,000 files a repo for a million examples. The models are
safetensors files whose metadata describes them (load one with Outwit's `checkpoints.load`, or its weights with
`safetensors.torch.load_file`).
"""


def dataset_card(repo_id: str, *, endpoint: str | None = None, space_id: str | None = None) -> str:
    return DATASET_CARD.format(repo_id=repo_id, outwit=_outwit(endpoint, space_id), blog=BLOG_POST,
                               license=DEFAULT_LICENSE)


MODEL_CARD = """---
library_name: pytorch
tags:
- image-classification
- mnist
- adversarial
- dynamic-adversarial-data-collection
---
# Outwit digit model, round {round}

A `{arch}` network ({arch_args}) that reads handwritten digits, retrained by {outwit} on drawings that fooled its
earlier rounds (dynamic adversarial data collection, after the blog post
["How to train your model dynamically using adversarial data"]({blog})).

| | |
| --- | --- |
| round | {round} |
| accuracy on MNIST (`{mnist_dataset}`, {mnist_size}) | {mnist_top1} |
| accuracy on held-out adversarial examples ({adversarial_size}) | {adversarial_top1} |
| accuracy under the standard attack suite, worst case ({suite_dataset}) | {suite_top1} |
| accuracy under a gradient attack ({robust_dataset}) | {robust_top1} |
| trained on | {trained_on} |
| recipe | {recipe} |
| made | {created} |

`{weights}` is the latest promoted round, `{config}` describes it (architecture, round, metrics, data, recipe)
and `{code}` holds the networks; `rounds/round-NNNN-<replica>.safetensors` keeps each round.

## Load it

Needs only `torch`, `safetensors` and `huggingface_hub`:

```python
import json, sys
from huggingface_hub import snapshot_download
from safetensors.torch import load_file

folder = snapshot_download("{repo_id}")
sys.path.insert(0, folder)
import model as outwit_networks  # the model.py of this repo

config = json.load(open(f"{{folder}}/{config}"))
net = outwit_networks.build_model(config["arch"], **config["arch_args"]).eval()
net.load_state_dict(load_file(f"{{folder}}/{weights}"))
```

Inputs are (N, 1, 28, 28) floats in [0, 1], white ink on black, centred by mass in a 20-px box as MNIST's digits
are (Outwit's `preprocess.preprocess(drawing)` makes them from a drawing); the output is 10 logits.
"""


def model_card(repo_id: str, meta: CheckpointMeta, *, endpoint: str | None = None, space_id: str | None = None,
               dataset_repo: str | None = None) -> str:
    mnist, adversarial, robust, suite = (meta.metrics.get(name) for name in (MNIST, ADVERSARIAL, ROBUST, SUITE))
    trained_on = json.dumps(meta.trained_on)
    if dataset_repo:
        trained_on += f"; examples from [{dataset_repo}]({(endpoint or HUB).rstrip('/')}/datasets/{dataset_repo})"
    return MODEL_CARD.format(
        repo_id=repo_id, round=meta.round, arch=meta.arch, arch_args=json.dumps(meta.arch_args),
        outwit=_outwit(endpoint, space_id), blog=BLOG_POST,
        mnist_dataset=mnist.dataset if mnist else "not measured",
        mnist_size=f"{mnist.size:,} images" if mnist and mnist.size else "size not recorded",
        mnist_top1=percent(mnist.top1 if mnist else None),
        adversarial_size=f"{adversarial.size if adversarial and adversarial.size else 0} examples",
        adversarial_top1=percent(adversarial.top1 if adversarial else None),
        robust_dataset=f"`{robust.dataset}`" if robust else "not measured",
        robust_top1=percent(robust.top1 if robust else None), trained_on=trained_on,
        suite_dataset=f"`{suite.dataset}`" if suite else "not measured",
        suite_top1=percent(suite.top1 if suite else None),
        recipe=json.dumps(meta.recipe), created=meta.created, weights=HUB_WEIGHTS, config=HUB_CONFIG, code=HUB_CODE)
