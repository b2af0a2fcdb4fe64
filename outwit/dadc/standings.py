"""What the rounds page shows: one row per round with Dynabench's rates, a leaderboard of people, and each round's
examples as a zip.

Dynabench's definitions: model error rate (MER) = fooling examples / examples tried; validated model error rate
(vMER) = validated fooling examples / examples tried; the rejection rate (voted incorrect) and the retraction rate,
both over the fooling examples. A round's examples are the ones that fooled that round's model; only drawings count
(a machine adversary's examples were not tried by a person). Drawings tried are counted per round by every replica
(tries.py); rounds recorded before that keep the count of the process that served them.
"""
from __future__ import annotations

import io
import json
import zipfile
from collections import Counter, defaultdict
from pathlib import Path

from outwit.dadc.agreement import agreement_per_round
from outwit.dadc.history import RoundRecord
from outwit.dadc.identity import SESSION, SIGNED_IN
from outwit.dadc.reviews import Reviews
from outwit.dadc.store import DRAWN, NO_TARGET, AdversarialStore
from outwit.dadc.tries import Tries
from outwit.ml.metrics import ADVERSARIAL, MNIST, ROBUST, percent

ROUND_COLUMNS = ["round", "status", "model", "examples", "tried", "MER", "vMER", "rejected", "retracted",
                 "validators' κ", "MNIST", "adversarial test", "under PGD"]
LEADERBOARD_COLUMNS = ["rank", "name", "account", "validated fooling examples", "fooling examples",
                       "targeted foolings", "rejected"]
PAIR_COLUMNS = ["round", "challenge", "attempts", "met", "error rate"]
ACCOUNTS = {SIGNED_IN: "Hugging Face", SESSION: "display name", "": "display name"}


def _share(numerator: int, denominator: int | None) -> str:
    return percent(numerator / denominator if denominator else None)


def _accuracy(record: RoundRecord, name: str) -> str:
    accuracy = record.metrics.get(name)
    return percent(accuracy.top1 if accuracy is not None else None)


def tried_per_round(records: list[RoundRecord], live_attempts: int) -> dict[int, int | None]:
    """Drawings each serving model judged: kept in the record of the round that replaced it (its count then), the
    serving model's from the worker (`live_attempts`)."""
    tried: dict[int, int | None] = {}
    served = [i for i, r in enumerate(records) if r.served]
    for position, i in enumerate(served):
        later = served[position + 1] if position + 1 < len(served) else None
        tried[records[i].round] = records[later].attempts if later is not None else live_attempts
    return tried


def rounds_table(records: list[RoundRecord], store: AdversarialStore, reviews: Reviews,
                 live_attempts: int, tries: Tries | None = None) -> list[list]:
    """One row per round (newest first), in ROUND_COLUMNS order. `tries`: the drawings every replica judged per
    round, where counted (the records keep this process's, for rounds before they were)."""
    drawn = defaultdict(list)
    every = Counter()
    for row in store.rows():
        every[row["round"]] += 1
        if row.get("source", DRAWN) == DRAWN:
            drawn[row["round"]].append(reviews.status(row))
    tried = tried_per_round(records, live_attempts)
    if tries is not None:
        tried.update({r: judged for r, (judged, _) in tries.per_round().items() if judged})
    kappas = agreement_per_round(store, reviews)
    table = []
    for record in reversed(records):  # a row's round is always a served model's: rejected rounds have none
        statuses = Counter(drawn[record.round])
        fooling = sum(statuses.values())
        known = tried.get(record.round)  # None: not a served model's round
        attempts = None if known is None else max(known, fooling)
        table.append([record.round, record.status, _model_name(record), every[record.round],
                      attempts if attempts is not None else "–", _share(fooling, attempts),
                      _share(statuses["validated"], attempts), _share(statuses["rejected"], fooling),
                      _share(statuses["retracted"], fooling), _kappa(kappas.get(record.round)),
                      _accuracy(record, MNIST),
                      _accuracy(record, ADVERSARIAL), _accuracy(record, ROBUST)])
    return table


def _kappa(agreement) -> str:
    """Fleiss' kappa and the examples it is over; "–" before two people voted on one example."""
    if agreement is None or agreement.kappa is None:
        return "–"
    return f"{agreement.kappa:.2f} ({agreement.examples} ex.)"


def pair_rates(tries: Tries | None) -> list[list]:
    """Per round (newest first) and targeted challenge ("3 → 8"), attempts and hits, in PAIR_COLUMNS order."""
    if tries is None:
        return []
    table = []
    for model_round in sorted(tries.per_round(), reverse=True):
        for pair, (attempts, hits) in sorted(tries.round(model_round).pairs.items()):
            drawn, aimed = pair.split(">")
            table.append([model_round, f"a {drawn} read as {aimed}", attempts, hits, _share(hits, attempts)])
    return table


def _model_name(record: RoundRecord) -> str:
    if record.status == "base":
        return "base model"
    if record.checkpoint:
        return Path(record.checkpoint).name
    return record.reason or record.error or ""


def leaderboard(store: AdversarialStore, reviews: Reviews) -> list[list]:
    """People who gave a name (signed in with Hugging Face, or a display name: two people even when the names are
    the same), by validated fooling drawings, in LEADERBOARD_COLUMNS order."""
    tally: dict[tuple[str, str], Counter] = defaultdict(Counter)
    for row in store.rows():
        if row.get("user") and row.get("source", DRAWN) == DRAWN:
            status = reviews.status(row)
            if status != "retracted":
                person = tally[(ACCOUNTS.get(row.get("identity") or "", "display name"), row["user"])]
                person["saved"] += 1
                person[status] += 1
                person["targeted"] += row.get("target", NO_TARGET) != NO_TARGET
    ranked = sorted(tally.items(), key=lambda item: (-item[1]["validated"], -item[1]["saved"], item[0][1].casefold(),
                                                     item[0][0]))
    return [[rank, name, account, counts["validated"], counts["saved"], counts["targeted"], counts["rejected"]]
            for rank, ((account, name), counts) in enumerate(ranked, start=1)]


def round_zip(store: AdversarialStore, reviews: Reviews, model_round: int) -> bytes:
    """The examples that fooled round `model_round`'s model, as an imagefolder data set in a zip: per split, the
    images, the model inputs and `metadata.jsonl`, each row with its standing and votes. Retracted and rejected
    examples are in it, marked: the log keeps everything."""
    buffer = io.BytesIO()
    folder = f"round-{model_round:04d}"
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        lines = defaultdict(list)
        for row in store.rows():
            if row["round"] != model_round:
                continue
            standing = reviews.standing(row["id"])
            lines[row["split"]].append({**row, "standing": reviews.status(row), "votes_correct": standing.correct,
                                        "votes_incorrect": standing.incorrect, "votes_unclear": standing.unclear,
                                        "reports": standing.reports})
            for column in ("file_name", "input_file_name"):
                archive.write(store.path_of(row, column), f"{folder}/{row['split']}/{row[column]}")
        for split, rows in lines.items():
            archive.writestr(f"{folder}/{split}/metadata.jsonl",
                             "".join(json.dumps(r, sort_keys=True) + "\n" for r in rows))
        if not lines:
            archive.writestr(f"{folder}/README.txt", f"No example fooled round {model_round}'s model.\n")
    return buffer.getvalue()
