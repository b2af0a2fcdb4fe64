"""What the page talks to, started once: the store, the serving model, the retrain worker, the Hub sync and the
model publisher; and the one status they make together (`/status` is its JSON)."""
from __future__ import annotations

import logging
import socket
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from outwit.config import Config
from outwit.dadc.collect import Collector
from outwit.dadc.hints import Hints
from outwit.dadc.history import History, load_serving
from outwit.dadc.reviews import Reviews
from outwit.dadc.rounds import Recipe
from outwit.dadc.runner import InProcess, RoundProcess
from outwit.dadc.status import WorkerStatus
from outwit.dadc.store import AdversarialStore
from outwit.dadc.training_sets import mixed_training_set, standard_eval_sets
from outwit.dadc.transfer import TransferCache
from outwit.dadc.tries import Tries
from outwit.dadc.worker import RetrainWorker
from outwit.hub.follow import ModelFollower
from outwit.hub.lease import RunnerLease, read_lease
from outwit.hub.publish import ModelPublisher, PublishStatus, fetch_published
from outwit.hub.restore import restore_or_none
from outwit.hub.sync import HubLink, SyncStatus, hub_api, sync_status
from outwit.ml import data
from outwit.ml.attacks import Attack, madry_pgd
from outwit.ml.references import References
from outwit.ml.serving import Predictor

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AppStatus:
    worker: WorkerStatus
    sync: SyncStatus
    models: PublishStatus | None  # None: rounds are not published
    serving: str  # what answers the page's guesses: "int8 (...)" or "float32: <why>" (serving.Predictor)

    def to_json(self) -> dict:
        """The worker's figures at the top level; the dataset sync, with the model publishing in it, under "sync"."""
        return {**asdict(self.worker), "serving": self.serving,
                "sync": {**asdict(self.sync), "models": asdict(self.models) if self.models else None}}


@dataclass
class Services:
    config: Config
    predictor: Predictor
    store: AdversarialStore
    worker: RetrainWorker
    collector: Collector  # the one saving path
    reviews: Reviews
    hub: HubLink | None = None  # None: local only
    publisher: ModelPublisher | None = None  # None: rounds are not published
    follower: ModelFollower | None = None  # ROUND_RUNNER replica or none: serves the model repo's newest round
    tries: Tries | None = None  # drawings judged per round, by every replica
    hints: Hints | None = None  # what the model has not learnt yet, and where it is weakest
    transfer: TransferCache | None = None  # what fooled one round's model, tried on the others

    def status(self) -> AppStatus:
        return AppStatus(worker=self.worker.status(), sync=sync_status(self.config, self.store, self.hub),
                         models=self.publisher.status() if self.publisher else None, serving=self.predictor.serving)

    def stop(self) -> None:
        """In the order that loses nothing: no more saves (those under way finish), the round under way finishes
        (and its model is published), then the last examples and rounds are pushed to the Hub."""
        self.collector.close()
        self.worker.stop()
        if self.publisher:
            self.publisher.stop()
        if self.follower:  # after the last publish: its lease is let go
            self.follower.stop()
        if self.tries:
            self.tries.flush()
        if self.hub:
            self.hub.stop()


def start_services(config: Config) -> Services:
    """Resume: examples and rounds from the Hub (when configured) and disk, the latest promoted model; start the
    retrain worker, the Hub sync and (ROUND_RUNNER replica or none) the model repo's follower."""
    shard = _plain(config.replica or f"{socket.gethostname()[:24]}-{uuid.uuid4().hex[:8]}")
    api = hub_api(config, shard) if config.hub_sync else None
    restored = restore_or_none(api, config.dataset_repo, config.data_dir) if api else None
    store = AdversarialStore(config.store_dir, shard=shard, holdout_every=config.holdout_every,
                             session_limit=config.flags_per_session)
    reviews = Reviews(config.reviews_dir, store, required=config.votes_required, limit=config.votes_cap,
                      trust=config.validator_trust, goal=config.round_goal)
    tries = Tries(config.tries_dir, shard, lock=store.lock)
    history = History(config.rounds_dir / shard / "rounds.jsonl", lock=store.lock)
    history.adopt_latest()
    model_api = (api or hub_api(config, shard)) if config.model_publishing else None
    lease = RunnerLease(api=model_api, repo_id=config.model_repo, holder=f"{shard}-{uuid.uuid4().hex[:6]}",
                        term=config.runner_lease * 60) if config.round_runner == "replica" else None
    publisher = _publisher(config, model_api, shard, history, store, lease) if model_api else None
    mnist_train = data.load_digits(config.mnist_data, config.data_dir, "train")
    mnist_test = data.load_digits(config.mnist_data, config.data_dir, "test")
    model, meta = load_serving(history, config.model_path)
    # rounds, and each serving model's int8 copy, are computed there
    runner = RoundProcess() if config.rounds_in == "process" else InProcess()
    predictor = Predictor(model, meta, calibration=calibration_images(mnist_train), precision=config.serve_precision,
                          build=runner.int8)
    robust = robust_attack(config.robust_eps)
    round_attack = robust_attack(config.round_attack_eps)
    worker = RetrainWorker(store=store, predictor=predictor, history=history,
                           training_set=mixed_training_set(store, mnist_train, attack=round_attack,
                                                           serving=lambda: predictor.current.model,
                                                           keep=reviews.usable),
                           eval_sets=standard_eval_sets(store, mnist_test, robust=robust,
                                                        robust_size=config.robust_size, keep=reviews.usable),
                           recipe=Recipe(steps=config.round_steps, gate_margin=config.gate_margin,
                                         tune=config.round_tune),
                           every=config.retrain_every,
                           on_promoted=(lambda path, meta: publisher.publish(path, meta, history.added_at_last_round()))
                           if publisher else None,
                           counter=reviews.validated_ever if config.votes_required else None,
                           runner=runner, may_run=_may_run(config, lease), tries=tries).start()
    references = References()  # the fixed models a visitor may fool and the transfer table tries, read on first use
    collector = Collector(store=store, worker=worker, predictor=predictor, references=references)

    def merged(*_) -> None:  # other replicas' rows came in (the store has re-read them): votes, tries, the trigger
        reviews.refresh()
        tries.refresh()
        worker.notify()

    hub = HubLink(config=config, store=store, api=api, restored=restored, on_restored=merged, on_pulled=merged,
                  before_push=tries.flush, keep=lambda: _serving_checkpoint(history)).start() if api else None
    follower = None
    if config.round_runner != "local":
        def adopt(checkpoint: bytes, meta, state) -> bool:
            source = (f"the round runner ({state.holder})" if state and state.holder
                      else f"model repo {config.model_repo}")
            return worker.adopt(checkpoint, meta, source=source, counted=state.counted if state else None)

        follower = ModelFollower(api=model_api, repo_id=config.model_repo, every=config.sync_every, adopt=adopt,
                                 serving_created=lambda: (history.serving().created if history.serving() else None),
                                 lease=lease, on_lease=lambda held: worker.notify()).start()
    hints = Hints(store=store, reviews=reviews, predictor=predictor, tries=tries)
    transfer = TransferCache(store, reviews.usable, lambda: _round_models(history, config), references)
    return Services(config, predictor, store, worker, collector, reviews, hub, publisher, follower, tries, hints,
                    transfer)


def _publisher(config: Config, api, shard: str, history: History, store: AdversarialStore,
               lease: RunnerLease | None) -> ModelPublisher:
    """Promoted rounds to the model repo; the repo's latest round adopted first, when it is not the one serving."""
    published = fetch_published(api, config.model_repo)
    if published:
        state = read_lease(api, config.model_repo, None) if config.round_runner != "local" else None
        counted = state.counted if state and state.counted is not None else store.counts().added
        history.adopt_model(*published, source=f"model repo {config.model_repo}", examples_added=counted)
    links = {"endpoint": config.hub_endpoint or None, "space_id": config.space_id or None,
             "dataset_repo": config.dataset_repo or None}
    return ModelPublisher(api=api, repo_id=config.model_repo, shard=shard, every=config.sync_every,
                          card_links=links, lease=lease).start()


def _may_run(config: Config, lease: RunnerLease | None):
    """Whether this process runs a round now: always (local), never (none), while it holds the lease (replica)."""
    if config.round_runner == "none":
        return lambda: False
    return (lambda: lease.held) if lease is not None else None


def calibration_images(digits: data.Digits, n: int = 256) -> torch.Tensor:
    """A fixed subset of the replay set's images: where the serving model's int8 copy learns its value ranges."""
    return digits.tensors()[0][data.fixed_subset(len(digits), n)]


def robust_attack(eps: float) -> Attack | None:
    """PGD-20 with Madry's step: cheap enough to run in every round; None at 0."""
    return madry_pgd(eps, steps=20) if eps > 0 else None


def _round_models(history: History, config: Config) -> dict[int, Path]:
    """{round: its model's checkpoint} of every round after the base model whose model served."""
    return {r.round: history.model_path(r, config.model_path) for r in history.records if r.served and r.round > 0}


def _serving_checkpoint(history: History) -> set[str]:
    """The dataset repo path of the serving round's checkpoint: kept there however old it grows."""
    serving = history.serving()
    return {f"rounds/{serving.checkpoint}"} if serving and serving.checkpoint else set()


def _plain(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "-" for c in name).strip("-") or "replica"
