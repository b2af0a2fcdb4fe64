"""Who a visitor is, as far as this app can tell, and what of it is kept: a session as a short hash, a display name
as given (checked), and the keys that decide whose example or vote a thing is.

A person signed in with Hugging Face is one identity wherever they are (tabs, reloads, devices, replicas): their
"session" is then `hf:<username>`, kept as its hash as any session is, so that the save cap, the ban on voting on
one's own examples and retraction follow the person. A page's own session id never holds a ':' (Gradio makes it
of letters and digits): one that does is not taken, so nobody can pass for a signed-in person.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass

from outwit.text import quoted

MAX_USER_NAME = 40
SIGNED_IN, SESSION = "signed-in", "session"  # a row's `identity`: how the person who saved it was known


@dataclass(frozen=True)
class Visitor:
    """Who is asking. `session`: the identity's id, not yet hashed (a page's session id, or `hf:<username>`);
    `user`: the name shown (the Hub username when signed in); `kind`: SIGNED_IN, SESSION or "" (nobody known)."""

    session: str | None = None
    user: str | None = None
    kind: str = ""

    @property
    def signed_in(self) -> bool:
        return self.kind == SIGNED_IN

    @classmethod
    def of(cls, session: str | None, display_name: str | None, hub_username: str | None = None) -> "Visitor":
        """A signed-in person by their Hub username (a display name is then ignored); otherwise the page's session
        and the display name they typed."""
        if hub_username:
            return cls(f"hf:{hub_username}", hub_username, SIGNED_IN)
        name = (display_name or "").strip() or None
        if not session or ":" in session:
            return cls(None, name, "")
        return cls(session, name, SESSION)


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
