"""Models in the loop (`outwit.dadc.opponents`): the models a visitor chooses to fool, a drawing that counts only
when every chosen model gets it wrong, and the readings each saved row keeps."""
import json

import numpy as np
import pytest
import torch
from torch import nn

from outwit.dadc.collect import Collector, NotFooled
from outwit.dadc.opponents import SERVING, told
from outwit.dadc.store import NO_TARGET, AdversarialStore
from outwit.ml.references import References
from outwit.sim.drawings import draw_sketch
from tests.paths import MODELS


class Reads(nn.Module):
    """A model that reads every input as one digit."""

    def __init__(self, digit: int):
        super().__init__()
        self.digit = digit

    def forward(self, x):
        return nn.functional.one_hot(torch.full((len(x),), self.digit), 10).float() * 5


class FixedReferences(References):
    """References whose models read everything as a fixed digit each: {"robust": 5, "vit": 8}."""

    def __init__(self, reads: dict[str, int]):
        super().__init__(MODELS)
        self.reads = reads

    def available(self):
        return [key for key in ("seed", "base", "robust", "vit") if key in self.reads]

    def model(self, key):
        return Reads(self.reads[key])


class Worker:
    def __init__(self):
        self.attempts = []

    def record_attempt(self, **kwargs):
        self.attempts.append(kwargs)

    def until_next_round(self):
        return 5

    def notify(self):
        pass

    def status(self):
        return None


class Predictor:
    """The serving model: reads everything as `digit`, round 2."""

    def __init__(self, digit: int):
        self.probs = np.eye(10)[digit] * 0.9 + 0.01
        self.current = type("Serving", (), {"round": 2})()

    def predict_tensor(self, x):
        return self.probs


def collector(tmp_path, serving: int, reads: dict[str, int]) -> Collector:
    store = AdversarialStore(tmp_path / "adversarial")
    return Collector(store=store, worker=Worker(), predictor=Predictor(serving), references=FixedReferences(reads))


def test_the_choice_is_the_serving_model_by_default_and_refuses_what_is_not_offered(tmp_path):
    opponents = collector(tmp_path, 3, {"robust": 5, "vit": 8}).opponents
    assert opponents.choices() == [("this round's model", SERVING), ("robust CNN", "robust"), ("ViT", "vit")]
    assert opponents.chosen(None) == (SERVING,)
    assert opponents.chosen(["vit", SERVING, "vit"]) == (SERVING, "vit")  # the serving model first, once each
    assert opponents.chosen("vit,robust") == ("robust", "vit")  # the quick guess's query
    with pytest.raises(ValueError, match="'seed' is not a model to fool here; choose from serving, robust, vit"):
        opponents.chosen(["seed"])
    with pytest.raises(ValueError, match="at least one"):
        opponents.chosen([])


def test_a_drawing_counts_only_when_every_chosen_model_gets_it_wrong(tmp_path):
    loop = collector(tmp_path, 3, {"robust": 5, "vit": 7})  # the serving model reads a 3, the robust 5, the ViT 7
    drawing = draw_sketch(7)
    with pytest.raises(NotFooled, match="The ViT already reads this as 7: nothing saved. Draw one that every model"):
        loop.fooling(drawing, 7, loop.judge(drawing, ("serving", "robust", "vit")))
    with pytest.raises(NotFooled, match="^The model already reads this as 3"):
        loop.fooling(drawing, 3)  # the serving model alone: as before
    example = loop.fooling(drawing, 9, loop.judge(drawing, ("serving", "robust", "vit")), aimed=5)
    assert [(r.model, r.guess) for r in example.readings] == [("serving", 3), ("robust", 5), ("vit", 7)]
    assert example.target == NO_TARGET  # the robust CNN read the 5 aimed for; the others did not
    row = loop.save(example).row
    assert json.loads(row["judged_by"]) == [{"model": "serving", "guess": 3, "confidence": 0.91, "round": 2},
                                            {"model": "robust", "guess": 5, "confidence": 0.9428},
                                            {"model": "vit", "guess": 7, "confidence": 0.9428}]
    assert told(row) == "the models it was drawn to fool said: round 2's model 3, robust CNN 5, ViT 7"


def test_against_the_references_alone_the_serving_models_right_reading_is_kept_and_not_counted_as_fooled(tmp_path):
    loop = collector(tmp_path, 3, {"robust": 5, "vit": 5})
    drawing = draw_sketch(3)
    example = loop.fooling(drawing, 3, loop.judge(drawing, ("robust", "vit")), aimed=5)
    assert (example.guess, example.target) == (3, 5)  # both references read it as the 5 aimed for
    row = loop.save(example).row
    assert (row["label"], row["guess"], row["target"]) == (3, 3, 5)
    assert [r["model"] for r in json.loads(row["judged_by"])] == ["robust", "vit"]
    assert loop.worker.attempts[-1]["fooled"] is False  # the serving model's error rate: it read it right
    saved = loop.save(loop.fooling(drawing, 4)).row  # the default choice: one reading, the serving model's
    assert json.loads(saved["judged_by"]) == [{"model": "serving", "guess": 3, "confidence": 0.91, "round": 2}]
    assert loop.worker.attempts[-1]["fooled"] is True and told(saved) == "the model said 3"


def test_the_store_refuses_a_target_or_readings_that_do_not_agree(tmp_path):
    store = AdversarialStore(tmp_path / "adversarial")
    judged = json.dumps([{"model": "robust", "guess": 5, "confidence": 0.9}, {"model": "vit", "guess": 8,
                                                                              "confidence": 0.6}])
    fields = dict(label=3, guess=3, confidence=0.9, model_round=0)
    with pytest.raises(ValueError, match="target=5 must be the digit the models read it as"):
        store.add(draw_sketch(3), **fields, target=5, judged_by=judged)
    for bad in ("not json", json.dumps([{"model": "vit"}]), json.dumps([{"model": "vit", "guess": 12}])):
        with pytest.raises(ValueError, match="judged_by="):
            store.add(draw_sketch(3), **fields, judged_by=bad)
    assert store.counts().added == 0
    assert store.add(draw_sketch(3), **fields, judged_by=judged)["judged_by"] == judged


def test_the_shipped_references_read_a_drawing(tmp_path):
    references = References(MODELS)
    assert references.available() == ["seed", "base", "robust", "vit"]
    loop = Collector(store=None, worker=Worker(), predictor=Predictor(3), references=references)
    judgement = loop.judge(draw_sketch(7), ("seed", "base", "robust", "vit"))
    assert [r.guess for r in judgement.chosen] == [7, 7, 7, 7]  # a clear 7: every reference reads it
    assert judgement.guess == 3  # the serving model's reading is kept beside them
    with pytest.raises(KeyError):
        References(tmp_path).model("vit")  # no checkpoint there
