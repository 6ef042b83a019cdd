"""``AccountStore.live``: which of the tokens a caller holds still identify a user (the /app logout of one login
keeps the user's app for the others)."""

from __future__ import annotations

import pytest

pytest.importorskip("argon2")

PASSWORD = "live tokens password 42"


def test_live_tokens_of_a_user(tmp_path) -> None:
    from AISAnnotationServer.accounts import AccountStore

    store = AccountStore(tmp_path / "state")
    store.add("r01", "annotator", PASSWORD)
    store.add("r02", "annotator", PASSWORD)
    a, b, c, d = (store.login("r01", PASSWORD)[0] for _ in range(4))
    other = store.login("r02", PASSWORD)[0]
    store.revoke(b)
    assert store.live("r01", []) == []
    # order kept; revoked, another user's and unknown tokens are not live
    assert store.live("r01", [d, b, other, "no-such-token", a, c]) == [d, a, c]
    assert store.live("r02", [a, other]) == [other]
    store.expire_all("r01")
    assert store.live("r01", [a, c, d]) == []
    store.set_disabled("r02")
    assert store.live("r02", [other]) == []
