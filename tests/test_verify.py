"""The hash chain: `feereg verify` passes on honest history and names tampered rows."""
from sqlalchemy import text

from feereg.extensions import db
from feereg.services import history

from .factories import make_firm, make_user, publish


def _two_firms_with_history(session):
    firms = []
    for _ in range(2):
        firm = make_firm()
        user = make_user("publisher", firm)
        for fee_type, name, unit in (("DOC", "文件费", "per_bl"), ("EIR", "设备交接单费", "per_container"),
                                     ("SEAL", "铅封费", "per_container")):
            publish(firm, user, fee_type=fee_type, name_zh=name, unit=unit)
        firms.append(firm)
    session.commit()
    return firms


def test_verify_passes_on_honest_history(session, runner):
    _two_firms_with_history(session)
    result = runner.invoke(args=["verify"])
    assert result.exit_code == 0, result.output
    assert "2 firm chains intact" in result.output


def test_verify_names_the_firm_and_version_changed_behind_the_apps_back(session, runner):
    victim, bystander = _two_firms_with_history(session)
    with db.engine.begin() as conn:
        conn.execute(text("UPDATE fee_item_version SET amount = 1.00 WHERE firm_id = :f AND seq = 2"),
                     {"f": victim.id})
    result = runner.invoke(args=["verify"])
    assert result.exit_code != 0
    assert f"FAIL firm {victim.credit_code}" in result.output
    assert "version #2" in result.output
    assert bystander.credit_code not in result.output


def test_verify_detects_a_deleted_latest_version(session):
    victim, _ = _two_firms_with_history(session)
    with db.engine.begin() as conn:
        conn.execute(text("DELETE FROM fee_item_version WHERE firm_id = :f AND seq = 3"), {"f": victim.id})
    session.expire_all()
    checked, problems = history.verify_all(session)
    assert checked == 2
    assert [p.firm_id for p in problems] == [victim.id]
    assert "chain head" in problems[0].reason


def test_verify_detects_a_rewritten_hash_chain_link(session):
    victim, _ = _two_firms_with_history(session)
    with db.engine.begin() as conn:
        # Rewriting a row and its own hash still breaks the next version's prev_hash.
        conn.execute(text("UPDATE fee_item_version SET hash = :h WHERE firm_id = :f AND seq = 1"),
                     {"h": "0" * 64, "f": victim.id})
    session.expire_all()
    _, problems = history.verify_all(session)
    reasons = {(p.seq, p.reason.split(" ")[0]) for p in problems}
    assert (1, "content") in reasons and (2, "prev_hash") in reasons
