import orjson
import pytest

from pinpoint_agent.errors import SessionError
from pinpoint_agent.ids import git_user_ref_id, hashcode, values
from pinpoint_agent.users import CommitUserTransform, commit_user_to_user


@pytest.mark.parametrize("parts, expected", [
    (("a",), "d24ec4f1a98c6e5b"), (("",), "ef46db3751d8e999"), ((1,), "b7b41276360564d4"),
    ((True,), "d7c9b97948142e4a"), ((), "ef46db3751d8e999"), ((None, "a"), "d24ec4f1a98c6e5b"),
    ((1.0,), "b7b41276360564d4"),
])
def test_values_matches_go_common_vectors(parts, expected):
    """hash.Values is reproduced bit for bit (the design's vectors; None writes nothing; 1.0 writes 1)."""
    assert values(*parts) == expected


def test_values_concatenates_without_separator_and_lists_of_strings_join():
    """Parts are written one after another, so ('ab',) == ('a','b') == (['a','b'],)."""
    assert values("ab") == values("a", "b") == values(["a", "b"])
    assert values(1.5) == values("1.500000")


def test_hashcode_is_values_over_fields_in_alphabetical_order():
    """An object's hashcode ignores its own hashcode field and orders fields by name."""
    obj = {"b": "2", "a": "1", "hashcode": "x"}
    assert hashcode(obj) == values("1", "2")


def test_linked_commit_user_becomes_git_user_with_design_ids():
    """A CommitUser with a source id gets ID=Values(User,cust,email,git,source) and ref_id=Values(cust,email)."""
    u = commit_user_to_user({"customer_id": "c1", "email": "Ann@Example.COM", "name": "Ann", "source_id": "42"})
    assert u["id"] == values("User", "c1", "ann@example.com", "git", "42")
    assert u["ref_id"] == values("c1", "ann@example.com") == git_user_ref_id("c1", "ANN@example.com")
    assert (u["ref_type"], u["email"], u["associated_ref_id"]) == ("git", "ann@example.com", "42")
    assert u["hashcode"] == hashcode(u)


def test_git_only_user_has_no_associated_ref_id():
    """A CommitUser from git (no source id) gets ID=Values(User,cust,email,git) and an empty association."""
    u = commit_user_to_user({"customer_id": "c1", "email": "bob@x.org", "name": "Bob", "source_id": ""})
    assert u["id"] == values("User", "c1", "bob@x.org", "git")
    assert u["associated_ref_id"] == ""


def test_transform_sends_each_email_source_pair_once():
    """The same email@@@source_id key is turned into a user once per export, case-insensitively."""
    t = CommitUserTransform()
    batch = [orjson.dumps({"customer_id": "c", "email": e, "name": "n", "source_id": s})
             for e, s in [("a@x", "1"), ("A@X", "1"), ("a@x", "2"), ("a@x", "")]]
    assert len(t(batch)) == 3
    assert t(batch) == []


def test_commit_user_without_email_is_refused():
    """A CommitUser missing its email is a session error, not a user with a bogus id."""
    with pytest.raises(SessionError, match="email"):
        commit_user_to_user({"customer_id": "c1", "name": "x"})
