"""Column names of the interchange files, and the header spellings accepted for them."""
from __future__ import annotations

import re
import unicodedata

FIRM_COLUMNS = ("credit_code", "name_zh", "name_en", "category", "ports", "contact_phone", "contact_email")

FEE_ITEM_COLUMNS = (
    "credit_code", "fee_code", "fee_type", "name_zh", "name_en", "unit", "container_size",
    "cargo_scope", "trade", "direction", "amount", "currency", "tiers", "pricing_basis",
    "service_content", "legal_basis", "ports", "effective_from",
)
#: Optional extra columns a file may carry.
FEE_ITEM_OPTIONAL = ("tax_included", "tax_rate")
FEE_ITEM_REQUIRED = ("credit_code", "amount")
FIRM_REQUIRED = ("credit_code", "name_zh", "category")

#: Chinese headers that firms' own spreadsheets use for the same columns.
HEADER_ALIASES = {
    "统一社会信用代码": "credit_code", "信用代码": "credit_code", "企业信用代码": "credit_code",
    "收费代码": "fee_code", "企业收费代码": "fee_code", "费用代码": "fee_code",
    "收费类型": "fee_type", "费用类型": "fee_type", "收费类别": "fee_type",
    "收费项目": "name_zh", "收费名称": "name_zh", "费用名称": "name_zh", "中文名称": "name_zh", "企业名称": "name_zh",
    "英文名称": "name_en", "收费单位": "unit", "计费单位": "unit", "单位": "unit",
    "箱型": "container_size", "箱型尺寸": "container_size", "货物范围": "cargo_scope",
    "贸易类型": "trade", "内外贸": "trade", "进出口": "direction", "方向": "direction",
    "收费标准": "amount", "金额": "amount", "币种": "currency", "阶梯": "tiers", "分段": "tiers",
    "定价方式": "pricing_basis", "服务内容": "service_content", "收费依据": "legal_basis",
    "港口": "ports", "口岸": "ports", "生效日期": "effective_from", "执行日期": "effective_from",
    "企业类别": "category", "类别": "category", "联系电话": "contact_phone", "电子邮箱": "contact_email",
    "是否含税": "tax_included", "税率": "tax_rate",
}


def canonical_header(raw) -> str:
    text = unicodedata.normalize("NFKC", str(raw or "")).strip().lstrip("\ufeff").strip()
    if text in HEADER_ALIASES:
        return HEADER_ALIASES[text]
    return re.sub(r"[\s\-]+", "_", text.lower())
