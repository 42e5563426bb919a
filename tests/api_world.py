"""A small registry for the API tests: two firms at two ports, an item with a past, present
and announced price, a regulator with a token, a flag and a complaint."""
from __future__ import annotations

from datetime import timedelta

from feereg.services import api_tokens, complaints, registry

from .audit_factories import make_flag
from .factories import item_values, make_firm, make_user, publish


def days(n: int):
    return registry.today() + timedelta(days=n)


def build_world(session) -> dict:
    agent = make_firm("shipping_agent", ports=("SHEKOU",), name_zh="深圳测试船代有限公司")
    yard = make_firm("offport_yard", ports=("YANTIAN",), name_zh="盐田测试堆场有限公司")
    pub_agent, pub_yard = make_user("publisher", agent), make_user("publisher", yard)
    # THC at the agent: 400 a year ago, 520 since last month, 600 announced for next month.
    thc = publish(agent, pub_agent, days(-400), fee_type="THC", name_zh="码头操作费", name_en="Terminal handling",
                  unit="per_container", container_size="40", amount="400", ports="SHEKOU")
    for amount, start in (("520", days(-30)), ("600", days(40))):
        registry.update_draft(session, thc, item_values(
            fee_type="THC", name_zh="码头操作费", name_en="Terminal handling", unit="per_container",
            container_size="40", amount=amount, ports="SHEKOU"), pub_agent, None)
        registry.publish_item(session, thc, pub_agent, start, allow_backdate=True)
    doc = publish(agent, pub_agent, days(-10), amount="450", currency="CNY", ports="SHEKOU")
    lolo = publish(yard, pub_yard, days(-10), fee_type="LOLO", name_zh="港外堆场吊箱费", name_en="Yard lift on/off",
                   unit="per_container", amount="180", currency="USD", ports="YANTIAN")
    regulator = make_user("regulator")
    token_row, token = api_tokens.create_token(session, regulator, "test script")
    flag = make_flag(yard, "PEER_OUTLIER", "high", item=lolo)
    complaint, _undisclosed = complaints.file_complaint(session, {
        "firm": yard, "fee_name": "换单费", "amount": "300", "currency": "CNY", "charged_on": days(-2),
        "description": "发票 No. 123", "contact": "赵六 13800001111"})
    admin = make_user("admin")
    session.commit()
    return {"agent": agent, "yard": yard, "pub_agent": pub_agent, "pub_yard": pub_yard, "thc": thc, "doc": doc,
            "lolo": lolo, "regulator": regulator, "token": token, "token_row": token_row, "flag": flag,
            "complaint": complaint, "admin": admin}


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}
