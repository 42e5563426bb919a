"""The operator's commands: users, firms, imports."""
from sqlalchemy import func, select

from feereg.models import FeeItemVersion, Firm, User
from feereg.services import accounts

from .factories import make_firm
from .test_imports import csv_bytes, row, standard_rows


def test_create_regulator_from_the_command_line(runner, session):
    result = runner.invoke(args=["create-user", "--role", "regulator", "--email", "Audit@Port.gov.example",
                                 "--password", "regulator-pass-1"])
    assert result.exit_code == 0, result.output
    user = session.scalar(select(User))
    assert (user.email, user.role, user.firm_id) == ("audit@port.gov.example", "regulator", None)
    assert accounts.password_matches(user, "regulator-pass-1")


def test_create_user_refuses_a_weak_password(runner, session):
    result = runner.invoke(args=["create-user", "--role", "admin", "--email", "a@b.example", "--password", "short"])
    assert result.exit_code != 0
    assert session.scalar(select(func.count()).select_from(User)) == 0


def test_firms_then_fee_items_import_from_the_command_line(runner, session, tmp_path):
    code = make_firm().credit_code  # an existing firm, to be updated
    session.commit()
    from feereg import credit_code
    new_code = credit_code.make("91440300MA5H00077")
    firms_file = tmp_path / "firms.csv"
    firms_file.write_text(
        "credit_code,name_zh,name_en,category,ports,contact_phone,contact_email\n"
        f"{new_code},深圳市蛇口港外堆场有限公司,Shekou Yard,offport_yard,SHEKOU;MAWAN,0755-1,yard@x.example\n"
        f"{code},深圳测试更名有限公司,Renamed,forwarder,YANTIAN,,\n", encoding="utf-8")
    result = runner.invoke(args=["import", str(firms_file)])
    assert result.exit_code == 0, result.output
    assert "1 new, 1 changed" in result.output
    assert session.scalar(select(Firm).where(Firm.credit_code == code)).name_zh == "深圳测试更名有限公司"

    items_file = tmp_path / "items.csv"
    items_file.write_bytes(csv_bytes(standard_rows(new_code)))
    assert runner.invoke(args=["import", str(items_file), "--dry-run"]).exit_code == 0
    assert session.scalar(select(func.count()).select_from(FeeItemVersion)) == 0
    result = runner.invoke(args=["import", str(items_file)])
    assert result.exit_code == 0, result.output
    assert session.scalar(select(func.count()).select_from(FeeItemVersion)) == 4


def test_import_with_errors_lists_them_and_writes_nothing(runner, session, tmp_path):
    firm = make_firm()
    session.commit()
    path = tmp_path / "bad.csv"
    path.write_bytes(csv_bytes([row(firm.credit_code), row(firm.credit_code, amount="-5", fee_code="X")]))
    result = runner.invoke(args=["import", str(path)])
    assert result.exit_code != 0
    assert "row 3, amount" in result.output
    assert session.scalar(select(func.count()).select_from(FeeItemVersion)) == 0


def test_suspend_and_reinstate_a_firm(runner, session):
    firm = make_firm()
    session.commit()
    assert runner.invoke(args=["firm-status", firm.credit_code, "suspended"]).exit_code != 0  # needs a reason
    result = runner.invoke(args=["firm-status", firm.credit_code, "suspended", "--reason", "未按规定公示"])
    assert result.exit_code == 0, result.output
    session.expire_all()
    assert session.get(Firm, firm.id).status == "suspended"
    assert runner.invoke(args=["firm-status", firm.credit_code, "active"]).exit_code == 0
    session.expire_all()
    assert session.get(Firm, firm.id).status == "active"
