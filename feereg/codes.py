"""The closed vocabularies of the registry: ports, firm categories, units and scopes.

Kept in one module so that forms, imports, search facets and the demo generator
all agree on the same codes and labels.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Code:
    code: str
    zh: str
    en: str

    def label(self, locale: str) -> str:
        return self.en if locale.startswith("en") else self.zh


def _table(*rows: tuple[str, str, str]) -> dict[str, Code]:
    return {code: Code(code, zh, en) for code, zh, en in rows}


SEA_PORTS = _table(
    ("YANTIAN", "盐田", "Yantian"),
    ("SHEKOU", "蛇口", "Shekou"),
    ("CHIWAN", "赤湾", "Chiwan"),
    ("MAWAN", "妈湾", "Mawan"),
    ("DACHANBAY", "大铲湾", "Dachan Bay"),
    ("HAIXING", "海星", "Haixing"),
    ("XIAOMO", "小漠", "Xiaomo"),
)
LAND_PORTS = _table(
    ("HUANGGANG", "皇岗", "Huanggang"),
    ("WENJINDU", "文锦渡", "Wenjindu"),
    ("LIANTANG", "莲塘", "Liantang"),
    ("SHENZHENBAY", "深圳湾", "Shenzhen Bay"),
    ("LUOHU", "罗湖", "Luohu"),
    ("FUTIAN", "福田", "Futian"),
)
AIR_PORTS = _table(("BAOAN", "宝安机场", "Bao'an Airport"))
PORTS: dict[str, Code] = {**SEA_PORTS, **LAND_PORTS, **AIR_PORTS}

CATEGORIES = _table(
    ("shipping_line", "船公司", "Shipping line"),
    ("shipping_agent", "船舶代理", "Shipping agent"),
    ("forwarder", "货运代理", "Freight forwarder"),
    ("customs_broker", "报关企业", "Customs broker"),
    ("terminal", "码头", "Terminal"),
    ("offport_yard", "港外堆场", "Off-port container yard"),
    ("tally", "理货公司", "Tally firm"),
    ("trucking", "拖车公司", "Trucking firm"),
    ("warehouse", "仓储企业", "Warehouse"),
    ("other", "其他", "Other"),
)

UNITS = _table(
    ("per_container", "每箱", "per container"),
    ("per_teu", "每标准箱", "per TEU"),
    ("per_bl", "每票提单", "per B/L"),
    ("per_shipment", "每票", "per shipment"),
    ("per_declaration", "每票报关单", "per declaration"),
    ("per_container_day", "每箱每天", "per container per day"),
    ("per_day", "每天", "per day"),
    ("per_call", "每艘次", "per vessel call"),
    ("per_ton", "每吨", "per ton"),
    ("per_cbm", "每立方米", "per cubic metre"),
)

CONTAINER_SIZES = _table(
    ("20", "20英尺", "20'"),
    ("40", "40英尺", "40'"),
    ("40HQ", "40英尺高柜", "40' high cube"),
    ("45", "45英尺", "45'"),
)
CARGO_SCOPES = _table(
    ("reefer", "冷藏箱", "reefer"),
    ("dangerous_goods", "危险品", "dangerous goods"),
    ("oversize", "超限箱", "oversize"),
)
TRADES = _table(("foreign", "外贸", "foreign trade"), ("domestic", "内贸", "domestic trade"))
DIRECTIONS = _table(("import", "进口", "import"), ("export", "出口", "export"))
CURRENCIES = _table(("CNY", "人民币", "CNY"), ("USD", "美元", "USD"), ("HKD", "港币", "HKD"))
PRICING_BASES = _table(
    ("government_set", "政府定价", "government-set"),
    ("government_guided", "政府指导价", "government-guided"),
    ("market", "市场调节价", "market price"),
)
FIRM_STATUSES = _table(("active", "正常", "active"), ("suspended", "已暂停", "suspended"))
ROLES = _table(
    ("publisher", "企业发布员", "publisher"),
    ("regulator", "监管人员", "regulator"),
    ("admin", "管理员", "administrator"),
)

#: The label shown for an empty scope column, which means the fee applies to any.
ANY = Code("", "不限", "any")


def label(table: dict[str, Code], code: str | None, locale: str) -> str:
    if not code:
        return ANY.label(locale)
    entry = table.get(code)
    return entry.label(locale) if entry else code


def split_list(value: str | None) -> list[str]:
    """Split a ';'-separated code list as written in files and stored in rows."""
    if not value:
        return []
    return [part.strip() for part in value.replace("；", ";").split(";") if part.strip()]


def join_list(values) -> str:
    """The canonical stored form of a code list: unique, sorted, ';'-joined."""
    return ";".join(sorted({v for v in values if v}))
