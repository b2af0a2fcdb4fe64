"""Validation votes, retraction and reports, as Dynabench runs them; the rounds table, leaderboard and round zips."""
import contextlib
import io
import json
import zipfile

import datasets
import pytest
import torch

from outwit.dadc.history import RoundRecord
from outwit.dadc.reviews import ReviewError, Reviews
from outwit.dadc.standings import ROUND_COLUMNS, leaderboard, round_zip, rounds_table
from outwit.dadc.store import AdversarialStore
from outwit.dadc.training_sets import mixed_training_set, standard_eval_sets
from outwit.ml import data
from outwit.ml.metrics import MNIST, Accuracy, Metrics
from outwit.sim.drawings import draw_sketch


def add(store, label=8, session="ada-session", user=None, model_round=0):
    return store.add(draw_sketch(3), label=label, guess=3, confidence=0.9, model_round=model_round, session=session,
                     user=user)


@pytest.fixture
def store(tmp_path):
    return AdversarialStore(tmp_path / "adversarial", holdout_every=5)


def test_nobody_validates_their_own_example_or_the_same_one_twice(store, tmp_path):
    reviews = Reviews(tmp_path / "reviews", store, required=2)
    row = add(store, user="Ada")
    with pytest.raises(ReviewError, match="somebody else"):
        reviews.vote(row["id"], "correct", session="ada-session")
    with pytest.raises(ReviewError, match="somebody else"):  # the same name from another session
        reviews.vote(row["id"], "correct", session="ada-phone", user="ada")
    assert reviews.queue("ada-session") == [] and reviews.queue("bob", "Ada") == []
    assert [r["id"] for r in reviews.queue("bob")] == [row["id"]]
    reviews.vote(row["id"], "correct", session="bob")
    with pytest.raises(ReviewError, match="already voted"):
        reviews.vote(row["id"], "incorrect", session="bob", digit=3)
    assert reviews.queue("bob") == []
    assert reviews.standing(row["id"]).correct == 1 and reviews.status(row) == "pending"


def test_required_agreeing_votes_decide_and_incorrect_ones_keep_it_out(store, tmp_path):
    reviews = Reviews(tmp_path / "reviews", store, required=2)
    good, bad = add(store, label=8), add(store, label=9)
    assert not reviews.usable(good) and reviews.counts()["pending"] == 2  # nothing trained on before votes
    reviews.vote(good["id"], "correct", session="bob")
    reviews.vote(good["id"], "unclear", session="cy")
    assert reviews.status(good) == "pending"
    reviews.vote(good["id"], "correct", session="dee")
    assert reviews.status(good) == "validated" and reviews.usable(good)
    with pytest.raises(ReviewError, match="already validated"):
        reviews.vote(good["id"], "incorrect", session="eve", digit=3)
    with pytest.raises(ReviewError, match="which digit"):  # incorrect needs the right digit
        reviews.vote(bad["id"], "incorrect", session="bob")
    with pytest.raises(ReviewError, match="labelled 9"):
        reviews.vote(bad["id"], "incorrect", session="bob", digit=9)
    reviews.vote(bad["id"], "incorrect", session="bob", digit=3)
    reviews.vote(bad["id"], "incorrect", session="cy", digit=5)
    assert reviews.status(bad) == "rejected" and reviews.standing(bad["id"]).digits == [3, 5]
    assert reviews.validated_ever() == 1
    assert reviews.counts() == {"validated": 1, "pending": 0, "rejected": 1, "retracted": 0, "hidden": 0}


def test_with_no_votes_required_the_flag_is_trusted_until_a_vote_says_otherwise(store, tmp_path):
    reviews = Reviews(tmp_path / "reviews", store)
    first, second = add(store), add(store)
    assert reviews.usable(first) and reviews.usable(second)
    reviews.vote(first["id"], "incorrect", session="bob", digit=3)
    assert reviews.status(first) == "rejected" and not reviews.usable(first)


def test_bad_votes_change_nothing(store, tmp_path):
    reviews = Reviews(tmp_path / "reviews", store, required=1)
    row = add(store)
    for example, verdict, kw, match in ((row["id"], "maybe", {}, "verdict"), ("nope", "correct", {}, "no example"),
                                        ("", "correct", {}, "no example"), (row["id"], "incorrect", {"digit": 10},
                                                                            "which digit"),
                                        (row["id"], "incorrect", {"digit": "3"}, "which digit")):
        with pytest.raises(ReviewError, match=match):
            reviews.vote(example, verdict, session="bob", **kw)
    with pytest.raises(ReviewError, match="needs a session"):
        reviews.vote(row["id"], "correct", session=None)
    assert reviews.events() == [] and not (tmp_path / "reviews").exists()


def test_only_the_creator_retracts_and_the_example_stays_in_the_log(store, tmp_path):
    reviews = Reviews(tmp_path / "reviews", store)
    row = add(store, session="ada-session")
    with pytest.raises(ReviewError, match="Only the person"):
        reviews.retract(row["id"], session="bob")
    reviews.retract(row["id"], session="ada-session")
    with pytest.raises(ReviewError, match="already retracted"):
        reviews.retract(row["id"], session="ada-session")
    assert reviews.status(row) == "retracted" and not reviews.usable(row) and not reviews.shown(row)
    assert store.row(row["id"]) == row and store.path_of(row).exists()  # marked, never deleted
    assert reviews.queue("bob") == []
    with pytest.raises(ReviewError, match="already retracted"):
        reviews.vote(row["id"], "correct", session="bob")


def test_a_report_hides_an_example_from_other_people_but_keeps_it(store, tmp_path):
    reviews = Reviews(tmp_path / "reviews", store)
    row = add(store)
    with pytest.raises(ReviewError, match="reason"):
        reviews.report(row["id"], "ugly", session="bob")
    reviews.report(row["id"], "not a digit", session="bob")
    assert not reviews.shown(row) and reviews.queue("cy") == [] and reviews.standing(row["id"]).reports == 1


def test_events_are_append_only_and_read_back_across_shards(store, tmp_path):
    reviews = Reviews(tmp_path / "reviews", store, required=1)
    row = add(store)
    reviews.vote(row["id"], "correct", session="bob", user="Bob")
    other = AdversarialStore(tmp_path / "adversarial", shard="replica-b")
    Reviews(tmp_path / "reviews", other, required=1).report(row["id"], "obscene or offensive", session="cy")
    lines = (tmp_path / "reviews" / "local" / "reviews.jsonl").read_text().splitlines()
    assert [json.loads(line)["kind"] for line in lines] == ["vote"]
    assert "bob" not in lines[0].replace("Bob", "")  # the session is kept only as a hash
    again = Reviews(tmp_path / "reviews", store, required=1)
    assert again.status(row) == "validated" and again.standing(row["id"]).reports == 1
    assert again.queue("bob") == [] and len(again.events()) == 2


def test_rounds_train_and_test_only_on_usable_examples(store, tmp_path):
    reviews = Reviews(tmp_path / "reviews", store, required=1)
    rows = [add(store, label=d % 10) for d in range(10)]  # seq 4 and 9 are held out
    for row in rows[:3] + [rows[4]]:
        reviews.vote(row["id"], "correct", session="bob")
    mnist = data.load_sample("train")
    built = mixed_training_set(store, mnist, replay=16, keep=reviews.usable)()
    assert built.description["adversarial"] == 3
    unfiltered = mixed_training_set(store, mnist, replay=16)()
    assert unfiltered.description["adversarial"] == 8
    sets = standard_eval_sets(store, data.load_sample("test"), keep=reviews.usable)()
    assert len(sets["adversarial"].labels) == 1 and sets["adversarial"].labels.tolist() == [rows[4]["label"]]


def _record(number, status, attempts=None, top1=0.99):
    return RoundRecord(round=number, status=status, attempts=attempts,
                       metrics=Metrics({MNIST: Accuracy("mnist-sample-5k/test", 1000, top1)}),
                       checkpoint=f"local/round-{number:04d}.safetensors" if status == "promoted" else None)


def test_the_rounds_table_reports_mer_vmer_rejection_and_retraction(store, tmp_path):
    reviews = Reviews(tmp_path / "reviews", store, required=1)
    r0 = [add(store, model_round=0) for _ in range(4)]
    add(store, model_round=1)
    store.add_input(torch.zeros(28, 28, dtype=torch.uint8).numpy(), source="pgd-40x1@0.1", label=4, guess=9,
                    confidence=0.9, model_round=0)
    reviews.vote(r0[0]["id"], "correct", session="bob")
    reviews.vote(r0[1]["id"], "incorrect", session="bob", digit=3)
    reviews.retract(r0[2]["id"], session="ada-session")
    records = [_record(0, "base"), _record(1, "promoted", attempts=20), _record(2, "rejected", attempts=3)]
    table = rounds_table(records, store, reviews, live_attempts=5)
    by_round = {row[0]: dict(zip(ROUND_COLUMNS, row)) for row in table}
    assert [row[0] for row in table] == [2, 1, 0]  # newest first
    base = by_round[0]
    assert (base["examples"], base["tried"], base["MER"], base["vMER"]) == (5, 20, "20.0%", "5.0%")
    assert (base["rejected"], base["retracted"], base["MNIST"]) == ("25.0%", "25.0%", "99.0%")
    assert (by_round[1]["tried"], by_round[1]["MER"], by_round[1]["vMER"]) == (5, "20.0%", "0.0%")
    assert by_round[1]["model"] == "round-0001.safetensors"
    assert (by_round[2]["examples"], by_round[2]["MER"]) == (0, "–")


def test_the_leaderboard_ranks_named_people_by_validated_fooling_drawings(store, tmp_path):
    reviews = Reviews(tmp_path / "reviews", store, required=1)
    ada = [add(store, user="Ada", session="a") for _ in range(3)]
    bob = [add(store, user="Bob", session="b") for _ in range(2)]
    add(store, session="anonymous")
    for row in bob:
        reviews.vote(row["id"], "correct", session="cy")
    reviews.vote(ada[0]["id"], "correct", session="cy")
    reviews.vote(ada[1]["id"], "incorrect", session="cy", digit=3)
    reviews.retract(ada[2]["id"], session="a")
    assert leaderboard(store, reviews) == [[1, "Bob", "display name", 2, 2, 0, 0],
                                           [2, "Ada", "display name", 1, 2, 0, 1]]


def test_a_round_zip_is_an_imagefolder_with_each_examples_standing(store, tmp_path):
    reviews = Reviews(tmp_path / "reviews", store)
    rows = [add(store, label=d, model_round=1) for d in range(5)]
    add(store, model_round=0)
    reviews.retract(rows[0]["id"], session="ada-session")
    payload = round_zip(store, reviews, 1)
    folder = tmp_path / "unzipped"
    zipfile.ZipFile(io.BytesIO(payload)).extractall(folder)
    loaded = datasets.load_dataset("imagefolder", data_dir=str(folder / "round-0001"),
                                  cache_dir=str(tmp_path / "cache"))  # never an earlier run's cached copy
    assert sorted(loaded) == ["test", "train"] and len(loaded["train"]) == 4 and len(loaded["test"]) == 1
    standing = {r["id"]: r["standing"] for r in loaded["train"]}
    assert standing[rows[0]["id"]] == "retracted" and standing[rows[1]["id"]] == "validated"
    empty = zipfile.ZipFile(io.BytesIO(round_zip(store, reviews, 7)))
    assert empty.namelist() == ["round-0007/README.txt"]


@pytest.mark.parametrize("required", [0, 2])
def test_counts_are_kept_as_events_come_and_agree_with_a_recount(store, tmp_path, monkeypatch, required):
    """Every open page asks for the counts every few seconds: they must not walk every example each time."""
    rows = [add(store, label=d % 10, session=f"author-{d % 3}") for d in range(9)]
    reviews = Reviews(tmp_path / "reviews", store, required=required)

    def recount(r: Reviews) -> dict:
        tally = dict.fromkeys(["validated", "pending", "rejected", "retracted", "hidden"], 0)
        for row in store.rows():
            tally[r.status(row)] += 1
        return tally

    events = [lambda: reviews.vote(rows[0]["id"], "correct", session="v1"),
              lambda: reviews.vote(rows[0]["id"], "correct", session="v2"),
              lambda: reviews.vote(rows[1]["id"], "incorrect", session="v1", digit=(rows[1]["label"] + 1) % 10),
              lambda: reviews.vote(rows[1]["id"], "incorrect", session="v2", digit=(rows[1]["label"] + 2) % 10),
              lambda: reviews.vote(rows[2]["id"], "unclear", session="v1"),
              lambda: reviews.retract(rows[3]["id"], session="author-0"),
              lambda: reviews.report(rows[4]["id"], "not a digit", session="v3"),
              lambda: reviews.hide(rows[4]["id"], reason="not a digit"),
              lambda: reviews.hide(rows[0]["id"]),
              lambda: add(store, label=5)]  # a new example, no events yet
    for event in events:
        with contextlib.suppress(ReviewError):  # with required=0 the first vote decides: a second is refused
            event()
        expected = recount(reviews)
        with monkeypatch.context() as m:
            m.setattr(store, "rows", lambda *a: pytest.fail("counts() read every example"))
            assert reviews.counts() == expected
    assert reviews.counts()["hidden"] == 2 and reviews.counts()["retracted"] == 1
    assert Reviews(tmp_path / "reviews", store, required=required).counts() == reviews.counts()  # read back
    assert reviews.validated_ever() == 1  # rows[0], hidden since: it still counted towards a round
