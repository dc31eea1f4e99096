"""Authorization rules read and evaluated as Nessie does (``lakehouse.server.authz``)."""

from __future__ import annotations

import pytest

from lakehouse.server.authz import (
    AccessDeniedError,
    AuthorizationRules,
    Check,
    CheckType,
    RulesError,
    on_content,
    on_reference,
    parse_properties,
)
from lakehouse.server.oidc import Principal

RULES = """
# readers see everything
nessie.server.authorization.rules.readers=op in ['VIEW_REFERENCE', 'READ_ENTRIES', \\
    'READ_CONTENT_KEY', 'LIST_COMMIT_LOG', 'READ_ENTITY_VALUE'] && 'readers' in roles
nessie.server.authorization.rules.bronze_writers=op in ['COMMIT_CHANGE_AGAINST_REFERENCE', \\
    'CREATE_ENTITY', 'UPDATE_ENTITY', 'DELETE_ENTITY'] && 'writers' in roles \\
    && ref != 'main' && (path == '' || path.startsWith('bronze.'))
nessie.server.authorization.rules.release=op == 'COMMIT_CHANGE_AGAINST_REFERENCE' \\
    && role == 'release-bot' && ref == 'main'
nessie.version.store.type=IN_MEMORY
"""

ALICE = Principal("alice", ("readers",))
WRITER = Principal("wendy", ("readers", "writers"))
BOT = Principal("release-bot", ())


def test_properties_are_read_with_continuations_and_comments() -> None:
    props = parse_properties(RULES)
    assert props["nessie.version.store.type"] == "IN_MEMORY"
    assert props["nessie.server.authorization.rules.readers"].startswith("op in ['VIEW_REFERENCE',")
    assert "'READ_CONTENT_KEY'" in props["nessie.server.authorization.rules.readers"]


def test_only_rule_keys_become_rules() -> None:
    rules = AuthorizationRules.from_properties(RULES)
    assert set(rules.rules) == {"readers", "bronze_writers", "release"}


def test_deny_by_default() -> None:
    rules = AuthorizationRules.from_mapping({"x": "role == 'nobody' && op == 'VIEW_REFERENCE'"})
    assert not rules.allows(Check(CheckType.READ_ENTRIES, "main"), ALICE)
    assert not rules.allows(Check(CheckType.VIEW_REFERENCE, "main"), ALICE)


def test_view_reference_is_allowed_when_no_rule_mentions_it() -> None:
    rules = AuthorizationRules.from_mapping({"x": "op == 'READ_ENTRIES' && role == 'alice'"})
    assert rules.allows(Check(CheckType.VIEW_REFERENCE, "anything"), Principal("bob"))
    assert not rules.allows(Check(CheckType.READ_ENTRIES, "main"), Principal("bob"))
    assert rules.allows(Check(CheckType.READ_ENTRIES, "main"), Principal("alice"))


@pytest.mark.parametrize(
    ("principal", "checks", "allowed"),
    [
        (ALICE, on_reference(CheckType.LIST_COMMIT_LOG, "main"), True),
        (ALICE, on_reference(CheckType.COMMIT_CHANGE_AGAINST_REFERENCE, "dev"), False),
        (WRITER, on_reference(CheckType.COMMIT_CHANGE_AGAINST_REFERENCE, "dev"), True),
        (WRITER, on_reference(CheckType.COMMIT_CHANGE_AGAINST_REFERENCE, "main"), False),
        (
            WRITER,
            on_content(CheckType.CREATE_ENTITY, "dev", "bronze.orders", "ICEBERG_TABLE"),
            True,
        ),
        (
            WRITER,
            on_content(CheckType.CREATE_ENTITY, "dev", "silver.orders", "ICEBERG_TABLE"),
            False,
        ),
        (BOT, on_reference(CheckType.COMMIT_CHANGE_AGAINST_REFERENCE, "main"), False),  # no view
        (BOT, [Check(CheckType.COMMIT_CHANGE_AGAINST_REFERENCE, "main")], True),
    ],
)
def test_rules_decide_as_written(principal: Principal, checks: list[Check], allowed: bool) -> None:
    rules = AuthorizationRules.from_properties(RULES)
    assert (not rules.failures(checks, principal)) is allowed


def test_refusal_names_every_failed_check_as_nessie_does() -> None:
    rules = AuthorizationRules.from_properties(RULES)
    with pytest.raises(AccessDeniedError) as info:
        rules.check(on_content(CheckType.DELETE_ENTITY, "main", "silver.t", "ICEBERG_TABLE"), BOT)
    assert str(info.value) == (
        "'VIEW_REFERENCE' is not allowed for role 'release-bot' on reference 'main', "
        "'DELETE_ENTITY' is not allowed for role 'release-bot' on content 'silver.t'"
    )


def test_path_and_content_type_are_empty_for_reference_checks() -> None:
    rules = AuthorizationRules.from_mapping(
        {"x": "op == 'READ_ENTRIES' && path == '' && contentType == ''"}
    )
    assert rules.allows(Check(CheckType.READ_ENTRIES, "main", "ignored", "X"), ALICE)


def test_a_rule_that_does_not_compile_is_refused_with_its_id() -> None:
    with pytest.raises(RulesError, match="'broken'"):
        AuthorizationRules.from_mapping({"broken": "op == ("})


def test_memoized_decisions_follow_every_variable_a_rule_mentions() -> None:
    # 'path' and 'op' appear inside string literals too: only real uses count, and a
    # decision is reused only for the same values of the variables the rule reads
    rules = AuthorizationRules.from_mapping(
        {
            "silver": "op == 'READ_CONTENT_KEY' && path.startsWith('silver') && 'path' != 'op'",
            "admins": "'admins' in roles",
        }
    )
    sam, root = Principal("sam"), Principal("root", ("admins",))
    for _ in range(3):  # the second and third rounds answer from the memo
        for path, allowed in (("silver.sales", True), ("bronze.orders", False)):
            check = Check(CheckType.READ_CONTENT_KEY, "main", path, "ICEBERG_TABLE")
            assert rules.allows(check, sam) is allowed
            assert rules.allows(check, root) is True
        other_op = Check(CheckType.READ_ENTITY_VALUE, "main", "silver.sales", "ICEBERG_TABLE")
        assert rules.allows(other_op, sam) is False


def test_a_listing_evaluates_a_rule_without_path_once() -> None:
    rules = AuthorizationRules.from_mapping({"readers": "'readers' in roles"})
    rita = Principal("rita", ("readers",))
    for i in range(50):
        assert rules.allows(Check(CheckType.READ_CONTENT_KEY, "main", f"ns.t{i}"), rita)
    assert len(rules._decisions) == 1


def test_a_rule_restricted_to_other_operations_is_not_evaluated() -> None:
    rules = AuthorizationRules.from_mapping(
        {
            "writers": "op in ['UPDATE_ENTITY', 'DELETE_ENTITY'] && path.startsWith('bronze.')",
            "viewers": "op == 'VIEW_REFERENCE' && ref == 'main'",
        }
    )
    wes = Principal("wes")
    for i in range(20):
        check = Check(CheckType.READ_CONTENT_KEY, "main", f"bronze.t{i}", "ICEBERG_TABLE")
        assert not rules.allows(check, wes)
    assert rules._decisions == {}  # no rule could allow READ_CONTENT_KEY: none ran
    update = Check(CheckType.UPDATE_ENTITY, "dev", "bronze.t1", "ICEBERG_TABLE")
    assert rules.allows(update, wes)
    assert rules.allows(Check(CheckType.VIEW_REFERENCE, "main"), wes)
    assert not rules.allows(Check(CheckType.VIEW_REFERENCE, "dev"), wes)
