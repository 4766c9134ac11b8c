"""A person named under another case (db.operators.operator_named) on real SQLite and real PostgreSQL: the change is
refused, nothing is written, and the error names the registered spelling instead of saying nobody is registered."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from db.operators import OperatorRoster, UnknownOperatorError
from db.repository import VerdictRepository
from db.schema import Role

CHANGES: dict[str, Callable[[OperatorRoster, str], object]] = {
    "deactivate": lambda roster, name: roster.set_active(name, False),
    "role": lambda roster, name: roster.set_role(name, Role.OPERATOR),
    "set-pin": lambda roster, name: roster.set_pin(name, "8642"),
    "history": lambda roster, name: roster.history(name),
}


@pytest.mark.parametrize("typed", ["ANA", "ana", "aNa"])
@pytest.mark.parametrize("change", sorted(CHANGES))
def test_a_name_differing_only_in_case_is_refused_with_the_registered_spelling(
    repo: VerdictRepository, change: str, typed: str
) -> None:
    roster = repo.operators
    roster.add("Ana", Role.SUPERVISOR, "2468")
    before = (roster.summaries(), roster.history())
    with pytest.raises(UnknownOperatorError) as refused:
        CHANGES[change](roster, typed)
    assert str(refused.value) == f"operator {typed!r} is not registered; did you mean 'Ana'?"
    assert (roster.summaries(), roster.history()) == before  # nothing done under another spelling
    assert roster.verify("Ana", "2468") is not None


def test_accented_letters_are_folded_on_both_databases(repo: VerdictRepository) -> None:
    """SQLite's lower() folds ASCII letters only; the hint must not depend on it."""
    repo.operators.add("Émile", Role.OPERATOR, "5555")
    with pytest.raises(UnknownOperatorError) as refused:
        repo.operators.set_active("ÉMILE", False)
    assert str(refused.value) == "operator 'ÉMILE' is not registered; did you mean 'Émile'?"


def test_a_name_registered_under_no_spelling_gets_no_hint(repo: VerdictRepository) -> None:
    repo.operators.add("Ana", Role.SUPERVISOR, "2468")
    with pytest.raises(UnknownOperatorError) as refused:
        repo.operators.set_active("Anna", False)
    assert str(refused.value) == "operator 'Anna' is not registered"
