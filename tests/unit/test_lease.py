"""The round runner's lease, and following the model repo, against a local server that speaks the Hub's HTTP API."""
import threading
from dataclasses import replace

import pytest

from model import build_model
from outwit.hub.follow import ModelFollower
from outwit.hub.lease import LEASE_PATH, LeaseLost, LeaseState, RunnerLease
from outwit.hub.publish import ModelPublisher
from outwit.ml import checkpoints
from outwit.ml.metrics import Metrics
from outwit.sim.hub_server import api_for

MODELS = "outwit/model"


class Clock:
    def __init__(self):
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def lease(hub, holder: str, clock: Clock, term: float = 60) -> RunnerLease:
    return RunnerLease(api=api_for(hub), repo_id=MODELS, holder=holder, term=term, clock=clock)


def on_hub(hub) -> LeaseState:
    return LeaseState.from_bytes(hub.repo(MODELS, kind="models").files[LEASE_PATH])


def test_one_runner_holds_the_lease_until_it_runs_out_or_is_let_go(hub):
    clock = Clock()
    a, b = lease(hub, "a", clock), lease(hub, "b", clock)
    assert a.refresh() and a.held
    assert not b.refresh() and not b.held  # held by a, not run out
    clock.now += 30  # half its term: renewed on a's next look
    assert a.refresh() and on_hub(hub).until == clock.now + 60
    clock.now += 61  # a stopped looking: it runs out
    assert not a.held
    assert b.refresh() and b.held and on_hub(hub).holder == "b"
    assert not a.refresh()  # a, back, finds b holding it
    b.release()
    assert not b.held and on_hub(hub).until == 0
    assert a.refresh()  # let go: taken at once


def test_two_runners_taking_a_free_lease_at_once_never_both_hold_it(hub):
    clock = Clock()
    runners = [lease(hub, f"runner-{i}", clock) for i in range(6)]
    barrier = threading.Barrier(len(runners))
    won = []

    def take(runner):
        barrier.wait()
        try:
            if runner.refresh():
                won.append(runner.holder)
        except Exception:  # noqa: BLE001 - a loser may also see the repo mid-change; it is then not a holder
            pass

    threads = [threading.Thread(target=take, args=(r,)) for r in runners]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(won) == 1 and on_hub(hub).holder == won[0]
    assert [r.holder for r in runners if r.held] == won


def test_a_runner_whose_lease_was_taken_over_publishes_nothing(hub, tmp_path):
    clock = Clock()
    old, new = lease(hub, "old", clock), lease(hub, "new", clock)
    assert old.refresh()
    clock.now += 61  # old stalls past its term (a long round, a pause); new takes over
    assert new.refresh()
    clock.now -= 30  # even were old's clock behind, so that it still thinks it holds the lease...
    model = build_model("seed").eval()
    meta = checkpoints.describe(model, round=4, metrics=Metrics(), trained_on={}, recipe={})
    path = checkpoints.save(tmp_path / "round-0004.safetensors", model, meta)
    with pytest.raises(LeaseLost):  # ...the Hub refuses a commit made on the head it last saw
        old.commit([], "Round 4 from old")
    publisher = ModelPublisher(api=api_for(hub), repo_id=MODELS, shard="old", every=60, lease=old).start()
    publisher.publish(path, meta, counted=40)
    assert publisher.wait_idle(60)
    publisher.stop()
    files = hub.repo(MODELS, kind="models").files
    assert "model.safetensors" not in files and "not published" in publisher.status().last_error
    assert publisher.status().waiting == 0  # dropped, not retried for ever


def test_a_follower_adopts_each_newer_round_once_with_the_runners_count(hub, tmp_path):
    clock = Clock()
    runner = lease(hub, "runner", clock)
    assert runner.refresh()
    publisher = ModelPublisher(api=api_for(hub), repo_id=MODELS, shard="runner", every=60, lease=runner).start()
    adopted = []
    serving = {"created": None}

    def adopt(payload, meta, state):
        adopted.append((meta.round, state.counted, state.holder))
        serving["created"] = meta.created
        return True

    follower = ModelFollower(api=api_for(hub), repo_id=MODELS, every=60, adopt=adopt,
                             serving_created=lambda: serving["created"])
    assert not follower.tick()  # a lease, and no round yet
    for number, counted in ((1, 10), (2, 20)):
        model = build_model("seed").eval()
        meta = checkpoints.describe(model, round=number, metrics=Metrics(), trained_on={}, recipe={})
        meta = replace(meta, created=f"2026-12-01T00:00:0{number}+00:00")  # in order, however fast this runs
        publisher.publish(checkpoints.save(tmp_path / f"round-{number}.safetensors", model, meta), meta, counted)
        assert publisher.wait_idle(60) and publisher.status().last_error is None
        assert follower.tick() and not follower.tick()  # adopted once; nothing new the second time
    assert adopted == [(1, 10, "runner"), (2, 20, "runner")]
    runner.refresh()
    assert not follower.tick()  # a renewal moves the head; the round is the same: nothing downloaded again
    publisher.stop()


def test_a_lease_that_ran_out_while_nobody_took_it_is_still_its_holders(hub):
    clock = Clock()
    runner = lease(hub, "runner", clock)
    assert runner.refresh()
    clock.now += 120  # the Hub was away for two terms: no renewal, and nobody took it
    assert not runner.held
    runner.commit([], "Round 5 from runner", round=5, created="2026-12-01T00:00:05+00:00", counted=50)
    assert runner.held and (on_hub(hub).holder, on_hub(hub).round, on_hub(hub).counted) == ("runner", 5, 50)


def test_a_runner_waiting_for_the_lease_reads_it_again_only_when_the_repo_moved(hub):
    clock = Clock()
    a, b = lease(hub, "a", clock), lease(hub, "b", clock)
    assert a.refresh()
    hub.downloads.clear()
    assert not b.refresh() and not b.refresh() and not b.refresh()
    assert hub.downloads == [LEASE_PATH]  # the head stood: the file it read still says the same
    clock.now += 30
    assert a.refresh()  # a renewal moves the head
    assert not b.refresh() and hub.downloads == [LEASE_PATH, LEASE_PATH]
