"""The dataset repo as the shared store, against a local server that speaks the Hub's HTTP API."""
import json
import threading
from collections import Counter
from pathlib import Path

import pytest
from huggingface_hub import HfApi

from outwit import services as app_services
from outwit.config import Config, Secret
from outwit.dadc.store import AdversarialStore
from outwit.hub.layout import jsonl, unpack
from outwit.hub.restore import restore_dataset
from outwit.hub.sync import HubLink
from outwit.sim.drawings import rotated_sketch
from outwit.sim.hub_server import REPO, TOKEN, FakeHub, api_for
from outwit.ui.page import build_demo, launch
from outwit.ui.panel import summary_markdown


def link(server: FakeHub, root: Path, shard: str) -> tuple[AdversarialStore, HubLink]:
    """A replica's store over the data folder `root`, restored from and synced to the Hub as the app does it."""
    config = Config(hf_token=Secret(TOKEN), dataset_repo=REPO, sync_every=60, hub_endpoint=server.endpoint,
                    replica=shard, data_dir=root)
    store = AdversarialStore(config.store_dir, shard=shard)
    hub_link = HubLink(config=config, store=store, api=api_for(server)).start()
    assert hub_link.wait_ready(30), hub_link.status()
    hub_link.sync.trigger().result(30)  # after the scheduler's first tick, at start (one commit at a time)
    return store, hub_link


def flag(store: AdversarialStore, n: int, start: int = 0) -> None:
    for i in range(start, start + n):
        store.add(rotated_sketch(i % 10, 45), label=i % 10, guess=(i + 3) % 10, confidence=0.7, model_round=0)


def tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for split in ("train", "test")
            for p in (root / "adversarial" / split).rglob("*") if p.is_file()}


def hub_rows(server: FakeHub) -> list[dict]:
    """Every example row in the repo's packs."""
    return [row for path, payload in sorted(server.repo(REPO).files.items()) if path.endswith(".parquet")
            for row in unpack(payload).rows]


def restored_store(server: FakeHub, root: Path) -> AdversarialStore:
    restore_dataset(api_for(server), REPO, root)
    return AdversarialStore(root / "adversarial", shard="reader")


def test_round_trip_a_fresh_folder_restored_from_the_hub_is_identical(hub, tmp_path):
    store, hub_link = link(hub, tmp_path / "a", "replica-a")
    flag(store, 7)
    assert hub_link.status().waiting == 7
    hub_link.sync.trigger().result(30)
    state = hub_link.status()
    assert state.waiting == 0 and state.last_push and state.last_error is None
    again = restored_store(hub, tmp_path / "fresh")
    assert tree(tmp_path / "fresh") == tree(tmp_path / "a")
    assert not (tmp_path / "fresh" / ".hub-restore").exists()  # merged, then the staging copy is gone
    assert [r["id"] for r in again.rows()] == [r["id"] for r in store.rows()]
    assert (again.counts().train, again.counts().test) == (6, 1)
    card = hub.repo(REPO).files["README.md"].decode()
    assert "split: train" in card and 'load_dataset("outwit/adversarial")' in card
    hub_link.stop(final_push=False)


def test_one_flag_never_makes_a_commit_of_its_own(hub, tmp_path):
    store, hub_link = link(hub, tmp_path, "replica-a")
    commits_before = len(hub.repo(REPO).commits)
    flag(store, 5)
    assert len(hub.repo(REPO).commits) == commits_before  # flags only write to disk
    hub_link.sync.trigger().result(30)
    assert len(hub.repo(REPO).commits) == commits_before + 1
    hub_link.stop(final_push=False)


def test_hub_down_then_back_everything_arrives_exactly_once(hub, tmp_path):
    store, hub_link = link(hub, tmp_path, "replica-a")
    flag(store, 3)
    hub_link.sync.trigger().result(30)
    hub.fail_next(2, 503)  # a passing outage: the client's own retries get through it
    flag(store, 2, start=3)
    hub_link.sync.trigger().result(60)
    hub.stop()  # now unreachable for a while
    flag(store, 4, start=5)
    with pytest.raises(Exception):
        hub_link.sync.trigger().result(120)
    state = hub_link.status()
    assert state.waiting == 4 and state.last_error
    assert len(store.rows()) == 9  # nothing lost on this side
    hub.start()  # back, on the same address
    hub.fail_next(1, 429)
    hub_link.sync.trigger().result(60)
    assert hub_link.status().waiting == 0 and hub_link.status().last_error is None
    on_hub = Counter(row["id"] for row in hub_rows(hub))
    assert len(on_hub) == 9 and set(on_hub.values()) == {1}  # each example there exactly once
    ids = [r["id"] for r in restored_store(hub, tmp_path / "fresh").rows()]
    assert sorted(ids) == sorted(r["id"] for r in store.rows()) and len(set(ids)) == 9
    hub_link.stop(final_push=False)


def test_two_replicas_flagging_at_once_overwrite_nothing(hub, tmp_path):
    store_a, link_a = link(hub, tmp_path / "a", "replica-a")
    store_b, link_b = link(hub, tmp_path / "b", "replica-b")

    def flag_and_push(store, hub_link, offset):
        for round_ in range(3):
            flag(store, 4, start=offset + 4 * round_)
            hub_link.sync.trigger().result(60)

    threads = [threading.Thread(target=flag_and_push, args=(store_a, link_a, 0)),
               threading.Thread(target=flag_and_push, args=(store_b, link_b, 100))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    rows = restored_store(hub, tmp_path / "fresh").rows()
    assert len(rows) == 24 and Counter(r["shard"] for r in rows) == {"replica-a": 12, "replica-b": 12}
    files = hub.repo(REPO).files
    assert {p.split("/")[2] for p in files if p.endswith(".parquet")} == {"replica-a", "replica-b"}
    assert Counter(row["shard"] for row in hub_rows(hub)) == {"replica-a": 12, "replica-b": 12}
    link_a.stop(final_push=False)
    link_b.stop(final_push=False)


def test_a_restarted_replica_resumes_and_sends_nothing_again(hub, tmp_path):
    store, hub_link = link(hub, tmp_path / "first", "replica-a")
    flag(store, 6)
    hub_link.stop(final_push=True)  # the final push at shutdown
    commits = len(hub.repo(REPO).commits)
    # the Space restarts with an empty disk and a new replica name
    store2, link2 = link(hub, tmp_path / "second", "replica-b")
    assert store2.counts().total == 6 and store2.counts().test == 1
    assert len(hub.repo(REPO).commits) == commits  # restored files are not pushed back
    flag(store2, 1, start=50)
    link2.sync.trigger().result(30)
    assert len(hub.repo(REPO).commits) == commits + 1
    assert all(p.split("/")[2] == "replica-b" for p in hub.repo(REPO).commits[-1]["added"])
    link2.stop(final_push=False)


def test_an_unreachable_hub_at_start_serves_locally_and_says_so(tmp_path):
    config = Config(hf_token=Secret(TOKEN), dataset_repo=REPO, sync_every=60, hub_endpoint="http://127.0.0.1:9",
                    data_dir=tmp_path)
    store = AdversarialStore(config.store_dir, shard="r")
    hub_link = HubLink(config=config, store=store, api=HfApi(endpoint=config.hub_endpoint, token=TOKEN)).start()
    for _ in range(120):  # the client's own retries come first
        if hub_link.status().last_error:
            break
        hub_link.wait_ready(0.5)
    assert hub_link.sync is None
    flag(store, 1)
    state = hub_link.status()
    assert state.enabled and state.waiting == 1 and state.last_error and "could not be reached" in state.phase
    assert TOKEN not in repr(state)
    hub_link.stop(final_push=False)


def test_the_app_syncs_shows_the_state_and_never_shows_the_token(hub, tmp_path, caplog):
    import logging

    import httpx
    from gradio_client import Client

    from outwit.sim.drawings import client_payload, fooling_examples

    caplog.set_level(logging.DEBUG)
    config = Config.from_env({"HF_TOKEN": TOKEN, "DATASET_REPO": REPO, "HF_ENDPOINT": hub.endpoint,
                              "DATA_DIR": str(tmp_path / "data"), "MNIST_DATA": "sample", "SYNC_EVERY": "60"})
    assert TOKEN not in repr(config) and TOKEN not in str(config)
    services = app_services.start_services(config)
    demo = build_demo(config, services)
    _, url, _ = launch(demo, config, server_port=None, prevent_thread_lock=True, quiet=True)
    try:
        assert services.hub.wait_ready(30)
        client = Client(url, verbose=False)
        for i, (drawing, digit, _) in enumerate(fooling_examples(services.predictor.predict, 3)):
            client.predict(client_payload(drawing, tmp_path / "up" / str(i)), digit, api_name="/flag")
        first = services.store.rows()[0]
        services.reviews.vote(first["id"], "correct", session="another-visitor")  # votes go up with the examples
        status = client.predict(api_name="/status")
        assert status["sync"]["enabled"] and status["sync"]["repo"] == REPO and status["sync"]["waiting"] == 3
        services.hub.sync.trigger().result(30)
        status = client.predict(api_name="/status")
        assert status["sync"]["waiting"] == 0 and status["sync"]["last_push"]
        shard = services.store.shard
        assert f"adversarial/train/{shard}/pack-00000.parquet" in hub.repo(REPO).files
        assert f"reviews/{shard}/reviews-00000.jsonl" in hub.repo(REPO).files
        served = [json.dumps(status), httpx.get(url).text, httpx.get(url.rstrip("/") + "/config").text,
                  httpx.get(url + "gradio_api/info").text]
        served.append(summary_markdown(services.status()))  # what the page's panel shows
    finally:
        services.stop()
        demo.close()
    written = [p.read_bytes().decode("utf-8", "replace") for p in (tmp_path / "data").rglob("*") if p.is_file()]
    assert hub.auth_headers and all(h == f"Bearer {TOKEN}" for h in hub.auth_headers)  # it was used...
    for text in served + written + [caplog.text]:
        assert TOKEN not in text  # ...and never shown, logged or written


def test_without_token_or_repo_the_app_is_local_only_and_says_so(tmp_path):

    config = Config(data_dir=tmp_path / "data", mnist_data="sample", dataset_repo=REPO)  # a repo, no token
    services = app_services.start_services(config)
    try:
        status = services.status()
    finally:
        services.stop()
    assert services.hub is None and not status.sync.enabled and status.to_json()["sync"]["enabled"] is False
    assert "local only (no HF_TOKEN)" in summary_markdown(status)


def test_the_dataset_card_links_to_real_places(hub, tmp_path):
    config = Config(hf_token=Secret(TOKEN), dataset_repo=REPO, sync_every=60, hub_endpoint=hub.endpoint,
                    replica="r", data_dir=tmp_path, space_id="someone/outwit")
    (tmp_path / "README.md").write_text("Collected with [Outwit](https://github.com/), an old card")
    hub_link = HubLink(config=config, store=AdversarialStore(config.store_dir, shard="r"), api=api_for(hub)).start()
    assert hub_link.wait_ready(30)
    hub_link.sync.trigger().result(30)
    hub_link.stop(final_push=False)
    card = hub.repo(REPO).files["README.md"].decode()
    assert f"[Outwit]({hub.endpoint}/spaces/someone/outwit)" in card and "github.com/)" not in card
    assert "(https://huggingface.co/blog/mnist-adversarial)" in card and "hf download outwit/adversarial" in card


def test_restoring_never_overwrites_rows_written_after_the_last_push(hub, tmp_path):
    store, hub_link = link(hub, tmp_path, "replica-a")
    flag(store, 3)
    hub_link.sync.trigger().result(30)
    flag(store, 2, start=3)  # saved, then the process dies before the next push
    hub_link.sync.stop()
    hub_link._stop.set()
    metadata = tmp_path / "adversarial" / "train" / "replica-a" / "metadata.jsonl"
    rows_on_disk = metadata.read_text()
    # the same machine starts again, and restores from the Hub over its own disk
    store2, link2 = link(hub, tmp_path, "replica-a2")
    assert metadata.read_text() == rows_on_disk and store2.counts().total == 5
    link2.sync.trigger().result(30)  # ...and the two unsent rows go up now
    pack = unpack(hub.repo(REPO).files["adversarial/train/replica-a/pack-00000.parquet"])
    assert jsonl(pack.rows).decode() == rows_on_disk
    link2.stop(final_push=False)
