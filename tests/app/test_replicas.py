"""Several replicas as one app: each pulls what the others pushed, against a local server that speaks the Hub's API."""
from collections import Counter
from pathlib import Path

from outwit.config import Config, Secret
from outwit.dadc.reviews import Reviews
from outwit.dadc.store import AdversarialStore
from outwit.dadc.tries import Tries
from outwit.hub.layout import Layout
from outwit.hub.sync import HubLink
from outwit.sim.drawings import rotated_sketch
from outwit.sim.hub_server import REPO, TOKEN, FakeHub, api_for

SMALL = Layout(pack_rows=4, log_lines=3)  # parts of a few rows: a pull that fetches a whole table again shows


class Replica:
    """A replica's store and reviews over its own data folder, synced through the Hub as the app does it."""

    def __init__(self, server: FakeHub, root: Path, shard: str):
        config = Config(hf_token=Secret(TOKEN), dataset_repo=REPO, sync_every=60, hub_endpoint=server.endpoint,
                        replica=shard, data_dir=root)
        self.store = AdversarialStore(config.store_dir, shard=shard)
        self.reviews = Reviews(config.reviews_dir, self.store)
        self.tries = Tries(config.tries_dir, shard, lock=self.store.lock)
        self.merged = 0
        self.link = HubLink(config=config, store=self.store, api=api_for(server), layout=SMALL,
                            on_restored=self._merged, on_pulled=self._merged, before_push=self.tries.flush).start()
        assert self.link.wait_ready(30), self.link.status()
        self.sync()

    def _merged(self, *_) -> None:
        self.reviews.refresh()
        self.tries.refresh()
        self.merged += 1

    def sync(self) -> None:
        """One tick: pull, then push."""
        self.link.sync.trigger().result(60)

    def flag(self, n: int, start: int = 0) -> list[dict]:
        return [self.store.add(rotated_sketch(i % 10, 45), label=i % 10, guess=(i + 3) % 10, confidence=0.7,
                               model_round=0, session=f"{self.store.shard}-{i}") for i in range(start, start + n)]

    def stop(self) -> None:
        self.link.stop(final_push=False)


def ids(store: AdversarialStore) -> Counter:
    return Counter(row["id"] for row in store.rows())


def test_each_replica_sees_the_others_examples_and_pushes_only_its_own(hub, tmp_path):
    a, b = Replica(hub, tmp_path / "a", "replica-a"), Replica(hub, tmp_path / "b", "replica-b")
    a.flag(6)
    b.flag(3, start=50)
    a.sync()  # a pushes its six
    b.sync()  # b pulls them, then pushes its three
    a.sync()  # a pulls b's
    assert ids(a.store) == ids(b.store) and len(ids(a.store)) == 9 and set(ids(a.store).values()) == {1}
    assert a.store.counts().added == b.store.counts().added == 9
    for row in b.store.rows():  # the pulled rows' images are there to show and train on
        assert b.store.path_of(row).exists() and b.store.path_of(row, "input_file_name").exists()
    assert b.store.tensors(b.store.rows())[0].shape == (9, 1, 28, 28)
    for commit in hub.repo(REPO).commits:  # each replica's commits carry its own shard alone
        shards = {path.split("/")[2 if path.startswith("adversarial/") else 1] for path in commit["added"]
                  if "/" in path}
        assert len(shards) <= 1, commit
    assert b.link.status().pulled_rows == 6 and b.link.status().last_pull
    a.stop()
    b.stop()


def test_only_new_or_grown_parts_are_fetched(hub, tmp_path):
    a, b = Replica(hub, tmp_path / "a", "replica-a"), Replica(hub, tmp_path / "b", "replica-b")
    a.flag(10)  # train: 8 rows in packs of 4, 4; test: 2 rows
    a.sync()
    b.sync()
    assert len(b.store.rows()) == 10
    hub.downloads.clear()
    b.sync()  # nothing new: the head has not moved
    assert hub.downloads == []
    a.flag(1, start=10)  # the 11th is a train row: a third train pack of one row
    a.sync()
    b.sync()
    assert hub.downloads == ["adversarial/train/replica-a/pack-00002.parquet"], hub.downloads
    assert len(ids(b.store)) == 11 and set(ids(b.store).values()) == {1}
    a.stop()
    b.stop()


def test_a_vote_cast_on_one_replica_counts_on_the_other(hub, tmp_path):
    a, b = Replica(hub, tmp_path / "a", "replica-a"), Replica(hub, tmp_path / "b", "replica-b")
    a.reviews.required = b.reviews.required = 2
    example = a.flag(1)[0]
    a.sync()
    b.sync()
    assert [row["id"] for row in b.reviews.queue("visitor-on-b")] == [example["id"]]
    b.reviews.vote(example["id"], "correct", session="visitor-on-b")
    b.sync()
    a.sync()
    assert a.reviews.standing(example["id"]).correct == 1
    assert a.reviews.queue("visitor-on-b") == []  # who voted on b is not asked again on a
    a.reviews.vote(example["id"], "correct", session="visitor-on-a")
    assert a.reviews.status(example) == "validated"
    a.sync()
    b.sync()
    assert b.reviews.status(example) == "validated" and b.reviews.validated_ever() == 1
    a.stop()
    b.stop()


def test_a_shard_with_rows_the_hub_lacks_is_pushed_never_pulled_over(hub, tmp_path):
    """A process that stopped before its last push leaves rows only on disk; the next process on that disk pushes
    them, and its pulls leave that shard's local table alone."""
    old = Replica(hub, tmp_path / "disk", "old")
    old.flag(3)
    old.sync()
    old.flag(2, start=3)  # never pushed: the process stops here
    old.stop()
    other = Replica(hub, tmp_path / "other", "replica-b")
    other.flag(1, start=90)
    other.sync()
    again = Replica(hub, tmp_path / "disk", "new")  # restores, pulls, pushes the old shard's two rows
    assert len(ids(again.store)) == 6
    again.sync()
    other.sync()
    assert len(ids(other.store)) == 6 and set(ids(other.store).values()) == {1}
    again.stop()
    other.stop()


def test_the_model_error_rate_counts_the_drawings_every_replica_judged(hub, tmp_path):
    a, b = Replica(hub, tmp_path / "a", "replica-a"), Replica(hub, tmp_path / "b", "replica-b")
    for fooled in (True, False, False, False):  # round 0 on a: 1 of 4
        a.tries.record(0, fooled)
    for fooled in (True, True, False):  # on b: 2 of 3
        b.tries.record(0, fooled)
    b.tries.record(1, True)  # a later round, seen by b alone
    a.sync()
    b.sync()
    a.sync()
    assert a.tries.per_round() == b.tries.per_round() == {0: (7, 3), 1: (1, 1)}
    a.tries.record(0, False)  # counts go on; the next push carries the new totals, not another 1 of 4
    a.sync()
    b.sync()
    assert b.tries.of(0) == (8, 3)
    again = Tries(tmp_path / "a" / "tries", "replica-a", lock=a.store.lock)  # a restart under the same name
    assert again.of(0) == (8, 3) and again.of(1) == (1, 1)
    a.stop()
    b.stop()
