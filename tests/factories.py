"""Factories that build real rows through the services, and flush."""
from __future__ import annotations

import itertools
from datetime import date, timedelta
from decimal import Decimal

from feereg import credit_code
from feereg.extensions import db
from feereg.services import accounts, firms, registry
from feereg.services.catalog import CatalogIndex
from feereg.item_fields import clean_item_values

PASSWORD = "correct-horse-9"
_counter = itertools.count(1)


def new_credit_code() -> str:
    n = next(_counter)
    return credit_code.make(f"91440300MA5{n:06d}"[:17].ljust(17, "0"))


def make_firm(category: str = "forwarder", ports=("YANTIAN",), name_zh: str | None = None, **kw):
    n = next(_counter)
    values = {"credit_code": kw.pop("credit_code", None) or new_credit_code(),
              "name_zh": name_zh or f"深圳测试{n}号物流有限公司", "name_en": f"Test Logistics {n}",
              "category": category, "ports": list(ports), **kw}
    firm = firms.create_firm(db.session, values)
    db.session.flush()
    return firm


def make_user(role: str = "publisher", firm=None, email: str | None = None):
    email = email or f"user{next(_counter)}@example.com"
    return accounts.create_user(db.session, email, PASSWORD, role, firm)


def item_values(**overrides) -> dict:
    raw = {"fee_type": "DOC", "name_zh": "文件费", "name_en": "Documentation fee", "unit": "per_bl",
           "amount": "450", "currency": "CNY", "pricing_basis": "market", "service_content": "签发提单",
           "ports": "YANTIAN"}
    raw.update(overrides)
    values, errors = clean_item_values(raw, CatalogIndex.load(db.session))
    assert not errors, [str(e) for e in errors]
    return values


def publish(firm, actor, effective_from: date | None = None, **overrides):
    item = registry.create_draft(db.session, firm, item_values(**overrides), actor)
    registry.publish_item(db.session, item, actor, effective_from or registry.today(), allow_backdate=True)
    return item


def days(n: int) -> date:
    return registry.today() + timedelta(days=n)


D = Decimal


def catalog_file_with(path, code: str, **names):
    """The fee catalog's CSV written to `path` with one type's fields changed (a rename)."""
    import csv

    from feereg.services import catalog

    rows = catalog.read_catalog_file()
    for row in rows:
        if row["code"] == code:
            row.update(names)
    with open(path, "w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path
