"""Issue 27's data: signed-in people as one identity, targeted challenges, adaptive validation, validators'
agreement (Fleiss' kappa), the round goal, hints, and the fields each row keeps."""
import json

import numpy as np
import pytest

from outwit.dadc.agreement import fleiss_kappa, low_agreement, validators
from outwit.dadc.collect import Collector, Judgement, NotFooled
from outwit.dadc.hints import Hints
from outwit.dadc.identity import SESSION, SIGNED_IN, Visitor
from outwit.dadc.reviews import ReviewError, Reviews
from outwit.dadc.standings import leaderboard, pair_rates
from outwit.dadc.store import NO_TARGET, AdversarialStore, FlagLimitError
from outwit.dadc.tries import Tries
from outwit.sim.drawings import draw_sketch

ANYONE = Visitor("s1", None, SESSION)


def add(store, label=8, guess=3, visitor=ANYONE, target=NO_TARGET, model_round=0, strokes=""):
    return store.add(draw_sketch(3), label=label, guess=guess, confidence=0.9, model_round=model_round,
                     session=visitor.session, user=visitor.user, identity=visitor.kind, target=target,
                     strokes=strokes)


@pytest.fixture
def store(tmp_path):
    return AdversarialStore(tmp_path / "adversarial", holdout_every=5)


def test_a_signed_in_person_is_one_identity_and_nobody_can_pass_for_them(store, tmp_path):
    ada_laptop, ada_phone = Visitor.of("tab1", "whatever", "ada"), Visitor.of("tab2", None, "ada")
    assert ada_laptop == ada_phone == Visitor("hf:ada", "ada", SIGNED_IN)
    assert Visitor.of("hf:ada", None) == Visitor(None, None, "")  # a made-up session id is no session
    reviews = Reviews(tmp_path / "reviews", store, required=1)
    row = add(store, visitor=ada_laptop)
    assert (row["user"], row["identity"]) == ("ada", SIGNED_IN)
    with pytest.raises(ReviewError, match="somebody else"):
        reviews.vote(row["id"], "correct", session=ada_phone.session, user=ada_phone.user)
    reviews.retract(row["id"], session=ada_phone.session)  # from another device
    assert reviews.status(row) == "retracted"
    with pytest.raises(ReviewError, match="Only the person"):
        reviews.retract(add(store, visitor=ada_laptop)["id"], session="tab1")  # her tab's own session is not her


def test_the_save_cap_follows_the_signed_in_person_not_the_tab(tmp_path):
    store = AdversarialStore(tmp_path / "adversarial", session_limit=2)
    add(store, visitor=Visitor.of("tab1", None, "ada"))
    add(store, visitor=Visitor.of("tab2", None, "ada"))
    with pytest.raises(FlagLimitError):
        add(store, visitor=Visitor.of("tab3", None, "ada"))
    add(store, visitor=Visitor.of("tab3", None, None))  # the same browser, not signed in: another identity


def test_a_row_keeps_target_identity_and_strokes_and_old_rows_read_as_before(store, tmp_path):
    pen = json.dumps([[[10, 20], [30, 40], [0, 16]]])
    row = add(store, label=3, guess=8, target=8, strokes=pen)
    kept = (row["target"], row["identity"], json.loads(row["strokes"]))
    assert kept == (8, SESSION, [[[10, 20], [30, 40], [0, 16]]])
    with pytest.raises(ValueError, match="target"):  # a target it was not read as is no target met
        add(store, label=3, guess=5, target=8)
    old = dict(row, id="old")
    for key in ("target", "identity", "strokes"):
        old.pop(key)
    folder = tmp_path / "adversarial" / "train" / "old"
    folder.mkdir(parents=True)
    (folder / "metadata.jsonl").write_text(json.dumps({**old, "shard": "old"}) + "\n")
    store.refresh()
    reviews = Reviews(tmp_path / "reviews", store)
    board = leaderboard(store, reviews)
    assert board == [] and store.row("old")["label"] == 3  # no name: not on the board; read as it was


def test_a_targeted_challenge_is_met_only_when_the_model_reads_the_target(tmp_path):
    class Worker:
        attempts: list = []

        def record_attempt(self, **kwargs):
            self.attempts.append(kwargs)

    collector = Collector(store=None, worker=Worker(), predictor=None)
    reads_8 = Judgement(np.eye(10)[8], 0)
    met = collector.fooling("drawing", 3, reads_8, aimed=8)
    missed = collector.fooling("drawing", 3, Judgement(np.eye(10)[5], 0), aimed=8)
    assert (met.target, missed.target, missed.guess) == (8, NO_TARGET, 5)
    with pytest.raises(ValueError, match="another digit"):
        collector.fooling("drawing", 3, reads_8, aimed=3)
    with pytest.raises(NotFooled):
        collector.fooling("drawing", 8, reads_8, aimed=3)
    collector.tried(guess=4, aimed=9)
    assert Worker.attempts[-1] == {"fooled": False, "digit": 4, "pair": (4, 9)}


def test_tries_count_per_digit_and_per_pair_over_replicas_and_read_old_lines(tmp_path):
    import threading
    lock = threading.Lock()
    a, b = Tries(tmp_path, "a", lock), Tries(tmp_path, "b", lock)
    a.record(1, False, 4)
    a.record(1, True, 3, (3, 8), hit=True)
    b.record(1, False, 3, (3, 8))
    b.record(1, True, 3, (3, 8), hit=False)
    a.flush(), b.flush()
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "tries.jsonl").write_text('{"round": 1, "judged": 5, "fooled": 1, "shard": "old"}\n')
    a.refresh()
    counts = a.round(1)
    assert (counts.judged, counts.fooled) == (9, 3)
    assert counts.digits[3] == [3, 2] and counts.digits[4] == [1, 0]
    assert counts.pairs == {"3>8": [3, 1]}
    assert pair_rates(a) == [[1, "a 3 read as 8", 3, 1, "33.3%"]]
    again = Tries(tmp_path, "a", lock)  # a restart carries on from its last line
    assert again.round(1).pairs == {"3>8": [3, 1]}


def test_a_split_vote_asks_for_more_and_the_limit_settles_it(store, tmp_path):
    reviews = Reviews(tmp_path / "reviews", store, required=2, limit=5)
    row = add(store)
    for voter, verdict in (("b", "correct"), ("c", "incorrect"), ("d", "correct")):
        reviews.vote(row["id"], verdict, session=voter, digit=5 if verdict == "incorrect" else None)
    assert reviews.status(row) == "pending"  # 2 to 1: two agreeing votes, but split
    reviews.vote(row["id"], "correct", session="e")
    assert reviews.status(row) == "validated"  # 3 to 1
    tied = add(store)
    for voter, verdict in (("b", "correct"), ("c", "incorrect"), ("d", "correct"), ("e", "incorrect")):
        reviews.vote(tied["id"], verdict, session=voter, digit=5 if verdict == "incorrect" else None)
    reviews.vote(tied["id"], "unclear", session="f")  # neither side, and not counted to the limit
    assert reviews.status(tied) == "pending"
    reviews.vote(tied["id"], "correct", session="g")  # the fifth vote: the majority decides
    assert reviews.status(tied) == "validated"
    assert Reviews(tmp_path / "reviews", store, required=2, limit=5).status(tied) == "validated"  # re-read


def test_a_doubted_validator_counts_only_once_someone_agrees(store, tmp_path):
    # "eve" votes incorrect on five examples that three others say are right: she agreed with 0 of 5
    many = Reviews(tmp_path / "reviews2", store, required=2, trust=0.6)
    for _ in range(5):
        row = add(store)
        many.vote(row["id"], "incorrect", session="eve", digit=5)
        many.vote(row["id"], "correct", session="b")
        many.vote(row["id"], "correct", session="c")
        many.vote(row["id"], "correct", session="d")
    eve = "session:" + _hash("eve")
    assert many.validator_agreement()[eve] == (0, 5) and many.doubted(eve)
    lone = add(store)
    many.vote(lone["id"], "incorrect", session="eve", digit=5)
    many.vote(lone["id"], "incorrect", session="f", digit=5)  # seconded: both count, 2 to 0
    assert many.status(lone) == "rejected"
    alone = add(store)
    many.vote(alone["id"], "incorrect", session="eve", digit=5)
    many.vote(alone["id"], "correct", session="g")
    many.vote(alone["id"], "correct", session="h")  # her lone vote waits: 2 to 0 for "correct"
    assert many.status(alone) == "validated"
    found = validators(many)
    assert found[0].key == eve and low_agreement(found) == [found[0]]


def _hash(session):
    from outwit.dadc.identity import hash_session
    return hash_session(session)


@pytest.mark.parametrize("tallies, kappa", [
    ([[2, 0, 0], [0, 2, 0], [2, 0, 0], [0, 2, 0]], 1.0),  # every pair agrees
    ([[1, 1, 0], [1, 1, 0]], -1.0),  # every pair disagrees
    ([[3, 0, 0], [1, 0, 0]], None),  # one rater's item is left out; all in one category: chance is 1
    ([[1, 0, 0]], None),  # nobody voted with anyone
])
def test_fleiss_kappa(tallies, kappa):
    got = fleiss_kappa(tallies)
    assert (got is None and kappa is None) or got == pytest.approx(kappa)


def test_fleiss_kappa_by_hand():
    # items: 3 raters (3 yes), 3 raters (2 yes, 1 no), 2 raters (1 yes, 1 no)
    # P_i = 1, (4+1-3)/6 = 1/3, (1+1-2)/2 = 0 → P̄ = 4/9; p = (6/8, 2/8) → P_e = 40/64 = 5/8
    assert fleiss_kappa([[3, 0, 0], [2, 1, 0], [1, 1, 0]]) == pytest.approx((4 / 9 - 5 / 8) / (1 - 5 / 8))


def test_the_round_goal_is_the_owners_latest_or_the_configured_one(store, tmp_path):
    reviews = Reviews(tmp_path / "reviews", store, goal="fool it")
    assert reviews.goal() == "fool it"
    reviews.set_goal("  fool it   with 4s ")
    assert reviews.goal() == "fool it with 4s"
    assert Reviews(tmp_path / "reviews", store, goal="fool it").goal() == "fool it with 4s"  # kept in the log
    with pytest.raises(ReviewError, match="120"):
        reviews.set_goal("x" * 121)
    reviews.set_goal("")
    assert reviews.goal() == "fool it" and reviews.counts()["validated"] == 0  # a goal is no example


class Serving:
    def __init__(self, model, round_):
        self.model, self.round = model, round_


class Predictor:
    def __init__(self, model, round_):
        self.current = Serving(model, round_)


def test_hints_show_validated_drawings_the_serving_model_still_gets_wrong_and_the_weak_digits(store, tmp_path):
    import threading

    import torch

    class ReadsAsFive(torch.nn.Module):
        def forward(self, x):
            return torch.nn.functional.one_hot(torch.full((len(x),), 5), 10).float() * 10

    reviews = Reviews(tmp_path / "reviews", store, required=1)
    beaten, unbeaten, pending, five = (add(store, label=d, model_round=1) for d in (3, 4, 7, 5))
    for row in (beaten, unbeaten, five):
        reviews.vote(row["id"], "correct", session="validator")
    tries = Tries(tmp_path / "tries", "local", threading.Lock())
    for digit, fooled in ((3, True), (3, False), (2, False)):
        tries.record(2, fooled, digit)
    hints = Hints(store=store, reviews=reviews, predictor=Predictor(ReadsAsFive(), 2), tries=tries)
    shown = hints.unbeaten()
    assert [(u.row["label"], u.now_read_as) for u in shown] == [(4, 5), (3, 5)]  # newest first; not pending, not 5
    rates = {r.digit: (r.judged, r.fooled) for r in hints.digit_rates()}
    assert rates[3] == (2, 1) and rates[2] == (1, 0) and rates[9] == (0, 0)
    drawn, aimed = hints.suggestion(seed=1)
    assert hints.digit_rates()[drawn].rate in (None, 0.0) and aimed != drawn
