"""bench/steps.py, the phases of the store's transactions: they add up, and the store is left as it was."""

from __future__ import annotations

from bench.steps import PHASES, measure, report


async def test_the_phases_of_each_transaction_are_measured_and_the_store_restored(
    postgres_conninfo: str,
) -> None:
    from turnout_builtin import _postgres

    before = (_postgres.PostgresStore._submit, _postgres.PostgresStore._run, _postgres._in_transaction)
    result = await measure(postgres_conninfo, 4)
    after = (_postgres.PostgresStore._submit, _postgres.PostgresStore._run, _postgres._in_transaction)
    assert after == before
    timings = result["timings"]
    # A workflow of three activities: its start, then one commit per step.
    assert timings.calls["create_instances"] == 4
    assert timings.calls["commit_turns"] >= 12
    for kind in ("create_instances", "commit_turns"):
        assert all(timings.seconds[kind][phase] > 0 for phase in PHASES), (kind, timings.seconds[kind])
    spent = sum(sum(timings.seconds[kind].values()) for kind in ("create_instances", "commit_turns"))
    assert spent / 4 < result["p50_ms"] / 1000 * 4  # parts of the workflows, not of something else
    text = report(result, 4)
    assert "commit_turns" in text and "hand-over" in text
