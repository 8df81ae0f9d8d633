"""The seccomp policy as data: what it removes from Docker's default and what it never allows are
really absent from the allowlist that both backends compile (a fast test, no sandbox)."""

from grader.sandbox import seccomp


def test_nothing_denied_or_removed_is_allowed():
    allowed = set(seccomp.ALLOWED)
    assert not allowed & set(seccomp.DENIED)
    assert not allowed & {name for name in seccomp.REMOVED if " " not in name}


def test_the_docker_profile_allows_exactly_the_allowlist():
    import json

    profile = json.loads(seccomp.docker_profile())
    named = {name for rule in profile["syscalls"] if rule["action"] == "SCMP_ACT_ALLOW" for name in rule["names"]}
    assert not named & set(seccomp.DENIED)
    assert profile["defaultAction"] != "SCMP_ACT_ALLOW"
