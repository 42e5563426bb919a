"""The quote rules on their own: which item applies and how many units of it, per unit.

Plain objects stand in for versions here (the rules read attributes only); the
database path is covered by test_quote.py.
"""
from dataclasses import dataclass
from decimal import Decimal as D
from itertools import count

import pytest

from feereg.services import quote_rules as rules
from feereg.services.quote_rules import Shipment

_ids = count(1)


@dataclass
class V:
    fee_type_code: str = "THC"
    unit: str = "per_container"
    amount: D = D("100.00")
    currency: str = "CNY"
    container_size: str = ""
    cargo_scope: str = ""
    trade: str = ""
    direction: str = ""
    tiers: str = ""
    id: int = 0

    def __post_init__(self):
        self.id = self.id or next(_ids)


def shipment(**kw) -> Shipment:
    values = dict(port="YANTIAN", direction="export", containers={"20": 2, "40": 1}, bills=1)
    values.update(kw)
    return Shipment(**values)


def totals(version, ship, sizes=None):
    priced = rules.price(version, ship, ship.sizes if sizes is None else sizes)
    return [(c.quantity, c.unit_amount, c.total) for c in priced.charges]


def grand_total(version, ship, sizes=None):
    return sum((c.total for c in rules.price(version, ship, ship.sizes if sizes is None else sizes).charges), D(0))


def cny(version):
    return version.amount


def test_per_container_counts_the_boxes_of_the_sizes_it_covers():
    ship = shipment(containers={"20": 2, "40": 1, "40HQ": 3})
    assert totals(V(amount=D("500")), ship, ["20"]) == [(D(2), D("500"), D("1000.00"))]
    assert grand_total(V(amount=D("500")), ship) == D("3000.00")


def test_a_sized_item_is_preferred_and_any_size_covers_the_rest():
    sized = V(container_size="40", amount=D("800"))
    any_size = V(container_size="", amount=D("500"))
    other = V(container_size="45", amount=D("1"))
    chosen, missing = rules.choose([any_size, sized, other], shipment(), cny)
    covered = {version.id: sizes for version, sizes in chosen}
    assert covered == {sized.id: ["40"], any_size.id: ["20"]}
    assert missing == []


def test_sizes_without_an_item_are_reported_missing():
    chosen, missing = rules.choose([V(container_size="20")], shipment(containers={"20": 1, "45": 2}), cny)
    assert [sizes for _v, sizes in chosen] == [["20"]]
    assert missing == ["45"]


def test_a_high_cube_pays_the_40_rate_unless_a_high_cube_rate_is_published():
    forty, any_size = V(container_size="40", amount=D("800")), V(amount=D("500"))
    ship = shipment(containers={"40HQ": 2})
    chosen, missing = rules.choose([any_size, forty], ship, cny)
    assert [(v.id, sizes) for v, sizes in chosen] == [(forty.id, ["40HQ"])] and missing == []
    high_cube = V(container_size="40HQ", amount=D("850"))
    chosen, _missing = rules.choose([any_size, forty, high_cube], ship, cny)
    assert [v.id for v, _sizes in chosen] == [high_cube.id]
    assert rules.choose([V(container_size="20")], ship, cny) == ([], ["40HQ"])


def test_per_teu_counts_40_as_two_and_45_as_two_and_a_quarter():
    ship = shipment(containers={"20": 1, "40": 2, "40HQ": 1, "45": 1})
    assert ship.teu == D("9.25")
    assert totals(V(unit="per_teu", amount=D("100")), ship) == [(D("9.25"), D("100"), D("925.00"))]
    # A sized per-TEU item counts only its own size's TEU.
    assert totals(V(unit="per_teu", amount=D("100")), ship, ["40"]) == [(D(4), D("100"), D("400.00"))]


def test_per_bl_multiplies_by_the_bills_of_lading():
    assert totals(V(unit="per_bl", amount=D("450")), shipment(bills=3)) == [(D(3), D("450"), D("1350.00"))]


def test_per_shipment_is_charged_once():
    assert totals(V(unit="per_shipment", amount=D("300")), shipment(bills=4, containers={"40": 9})) == \
        [(D(1), D("300"), D("300.00"))]


def test_per_declaration_counts_one_declaration_per_bill():
    ship = shipment(bills=2, services=frozenset({"customs"}))
    assert ship.declarations == 2
    assert totals(V(unit="per_declaration", amount=D("150")), ship) == [(D(2), D("150"), D("300.00"))]


def test_per_container_day_with_tiers_charges_each_band_after_the_free_days():
    # 12 days, free 3, days 4-10 at 20, 11+ at 40; 2 × 20' and 1 × 40' = 3 boxes.
    version = V(unit="per_container_day", tiers="free:3;4-10:20;11-:40", amount=D("20"))
    lines = totals(version, shipment(storage_days=12))
    assert lines == [(D(0), D(0), D("0.00")), (D(21), D("20"), D("420.00")), (D(6), D("40"), D("240.00"))]
    assert grand_total(version, shipment(storage_days=12)) == D("660.00")


def test_days_within_the_free_days_cost_nothing():
    version = V(unit="per_container_day", tiers="free:7;8-14:85;15-:170")
    assert grand_total(version, shipment(storage_days=7)) == D("0.00")
    assert grand_total(version, shipment(storage_days=8)) == D("255.00")  # one day × 3 boxes × 85


def test_days_past_a_closed_last_band_are_charged_at_its_rate():
    version = V(unit="per_container_day", tiers="free:2;3-5:10")
    ship = shipment(storage_days=9, containers={"20": 1})
    assert totals(version, ship)[-1] == (D(7), D("10"), D("70.00"))


def test_per_day_ignores_the_container_count():
    version = V(unit="per_day", tiers="free:1;2-:50")
    assert grand_total(version, shipment(storage_days=4, containers={"40": 10})) == D("150.00")


def test_per_container_day_without_tiers_charges_every_day():
    assert grand_total(V(unit="per_container_day", amount=D("5")), shipment(storage_days=4)) == D("60.00")


def test_direction_trade_and_cargo_scoping():
    export = shipment(direction="export")
    assert rules.applies(V(direction=""), export)
    assert rules.applies(V(direction="export"), export)
    assert not rules.applies(V(direction="import"), export)
    assert not rules.applies(V(trade="domestic"), export)
    assert not rules.applies(V(cargo_scope="reefer"), export)
    assert rules.applies(V(cargo_scope="reefer"), shipment(cargo_scope="reefer"))


def test_the_more_specific_item_wins_then_the_higher_amount():
    general = V(amount=D("900"))
    export_only = V(direction="export", amount=D("100"))
    chosen, _missing = rules.choose([general, export_only, V(direction="import", amount=D("5"))], shipment(), cny)
    assert [v.id for v, _sizes in chosen] == [export_only.id]
    low, high = V(amount=D("100")), V(amount=D("120"))
    chosen, _missing = rules.choose([low, high], shipment(), cny)
    assert [v.id for v, _sizes in chosen] == [high.id]


@pytest.mark.parametrize("unit", ["per_call", "per_ton", "per_cbm"])
def test_units_a_shipment_cannot_count_are_not_priced(unit):
    priced = rules.price(V(unit=unit), shipment(), ["20", "40"])
    assert priced.charges == [] and priced.unpriced is not None


def test_categories_follow_the_services_asked_for():
    plain = rules.categories_for(shipment())
    assert {"shipping_line", "shipping_agent", "forwarder", "terminal", "offport_yard"} <= set(plain)
    assert not {"customs_broker", "trucking", "tally"} & set(plain)
    both = rules.categories_for(shipment(services=frozenset({"customs", "trucking"})))
    assert {"customs_broker", "trucking"} <= set(both)


def test_expected_fees_follow_the_direction_and_the_days():
    export = [e.fee_type for e in rules.expected_fees("shipping_line", shipment(direction="export"))]
    imported = [e.fee_type for e in rules.expected_fees("shipping_line", shipment(direction="import", storage_days=5))]
    assert "SEAL" in export and "DO" not in export and "DET" not in export
    assert "DO" in imported and "SEAL" not in imported and "DET" in imported


def test_inspection_shifting_is_not_expected_for_foreign_trade():
    ship = shipment(services=frozenset({"inspection"}))
    assert "INSPMOVE" not in [e.fee_type for e in rules.expected_fees("terminal", ship)]
    domestic = shipment(services=frozenset({"inspection"}), trade="domestic")
    assert "INSPMOVE" in [e.fee_type for e in rules.expected_fees("terminal", domestic)]
