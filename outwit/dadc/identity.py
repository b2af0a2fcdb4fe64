"""Who a visitor is, as far as this app can tell, and what of it is kept: a session as a short hash, a display name
as given (checked), and the keys that decide whose example or vote a thing is."""
from __future__ import annotations

import hashlib

from outwit.text import quoted

MAX_USER_NAME = 40


def user_name(user: str | None) -> str:
    """A name as a person gave it, trimmed; "" when none was given. Refused if it could not be shown as is.

    Never None: `datasets` infers each split's column types from its first rows and refuses splits that differ,
    so a split whose first rows had no name (null) and one with names (string) would not load together.
    """
    if user is None or not str(user).strip():
        return ""
    name = " ".join(str(user).split())
    if len(name) > MAX_USER_NAME or not name.isprintable():
        raise ValueError(f"user={quoted(user)} must be at most {MAX_USER_NAME} printable characters")
    return name


def hash_session(session: str | None) -> str:
    """A session id is kept only as a short hash: enough to group one visitor's examples, not to trace them;
    "" when there is none (never None, as for `user_name`)."""
    return hashlib.sha256(session.encode()).hexdigest()[:16] if session else ""


def voter_keys(session: str | None, user: str | None) -> set[str]:
    """Who is asking, from their session id (not yet hashed) and their name."""
    return voter_keys_hashed(hash_session(session), user)


def voter_keys_hashed(session_hash: str, user: str | None) -> set[str]:
    """Who a person is, as far as this app can tell: their session, and their name when they gave one."""
    keys = {f"session:{session_hash}"} if session_hash else set()
    name = " ".join((user or "").split())
    return keys | ({f"user:{name.casefold()}"} if name else set())


def is_own(row: dict, me: set[str]) -> bool:
    """Whether the example `row` was saved by the person with keys `me`."""
    return bool(voter_keys_hashed(row.get("session") or "", row.get("user")) & me)
