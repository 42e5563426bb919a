"""The word stock of the synthetic demo registry: firm names, fee prices, service texts.

Prices are plausible Shenzhen levels in the currency a firm of that kind usually
quotes; they are invented, not taken from any real schedule.
"""
from __future__ import annotations

from decimal import Decimal

#: Firms per category in the real-scale registry (679 in all), scaled for bigger runs.
CATEGORY_SHARES = {
    "shipping_line": 45, "shipping_agent": 90, "forwarder": 260, "customs_broker": 120, "terminal": 14,
    "offport_yard": 60, "tally": 8, "trucking": 50, "warehouse": 22, "other": 10,
}

#: How many fee items a firm of the category tends to publish, relative to a forwarder.
CATEGORY_WEIGHT = {
    "shipping_line": 4.0, "shipping_agent": 1.6, "forwarder": 0.8, "customs_broker": 0.8, "terminal": 3.0,
    "offport_yard": 1.8, "tally": 0.8, "trucking": 0.6, "warehouse": 1.0, "other": 0.8,
}

SEA_PORTS = ("YANTIAN", "SHEKOU", "CHIWAN", "MAWAN", "DACHANBAY", "HAIXING", "XIAOMO")
LAND_PORTS = ("HUANGGANG", "WENJINDU", "LIANTANG", "SHENZHENBAY", "LUOHU", "FUTIAN")
#: Where firms of a category work; the first ports are the busy ones and drawn more often.
CATEGORY_PORTS = {
    "shipping_line": SEA_PORTS[:5], "shipping_agent": SEA_PORTS[:5], "terminal": SEA_PORTS,
    "offport_yard": SEA_PORTS[:4], "tally": SEA_PORTS[:5], "forwarder": SEA_PORTS[:4] + LAND_PORTS[:2] + ("BAOAN",),
    "customs_broker": SEA_PORTS[:4] + LAND_PORTS + ("BAOAN",), "trucking": SEA_PORTS[:4] + LAND_PORTS[:3],
    "warehouse": SEA_PORTS[:4] + ("BAOAN",), "other": SEA_PORTS[:5],
}

DISTRICTS = (("深圳市", "Shenzhen"), ("深圳前海", "Shenzhen Qianhai"), ("深圳盐田", "Shenzhen Yantian"),
             ("深圳南山", "Shenzhen Nanshan"), ("深圳宝安", "Shenzhen Bao'an"), ("深圳龙岗", "Shenzhen Longgang"),
             ("深圳福田", "Shenzhen Futian"))
TRADE_NAMES = (
    ("海通", "Haitong"), ("远航", "Yuanhang"), ("中联", "Zhonglian"), ("华运", "Huayun"), ("鹏达", "Pengda"),
    ("恒信", "Hengxin"), ("港联", "Ganglian"), ("万邦", "Wanbang"), ("粤海", "Yuehai"), ("盛达", "Shengda"),
    ("捷通", "Jietong"), ("顺泰", "Shuntai"), ("嘉盛", "Jiasheng"), ("东方", "Dongfang"), ("南洋", "Nanyang"),
    ("宏图", "Hongtu"), ("金桥", "Jinqiao"), ("新港", "Xingang"), ("长风", "Changfeng"), ("瑞丰", "Ruifeng"),
    ("凯旋", "Kaixuan"), ("安达", "Anda"), ("通达", "Tongda"), ("永盛", "Yongsheng"), ("信诚", "Xincheng"),
    ("德邦", "Debang"), ("汇通", "Huitong"), ("鸿运", "Hongyun"), ("天海", "Tianhai"), ("蓝海", "Lanhai"),
    ("星辰", "Xingchen"), ("华南", "Huanan"), ("前程", "Qiancheng"), ("利丰", "Lifeng"), ("宝润", "Baorun"),
    ("中盈", "Zhongying"), ("弘毅", "Hongyi"), ("佳航", "Jiahang"), ("明珠", "Mingzhu"), ("环球", "Huanqiu"),
    ("联合", "Lianhe"), ("恒通", "Hengtong"), ("百利", "Baili"), ("兴华", "Xinghua"), ("振华", "Zhenhua"),
    ("锦程", "Jincheng"), ("海悦", "Haiyue"), ("峰景", "Fengjing"), ("和泰", "Hetai"), ("裕隆", "Yulong"),
)
CATEGORY_SUFFIX = {
    "shipping_line": ("航运有限公司", "Shipping Co., Ltd."),
    "shipping_agent": ("船务代理有限公司", "Shipping Agency Co., Ltd."),
    "forwarder": ("国际货运代理有限公司", "International Freight Forwarding Co., Ltd."),
    "customs_broker": ("报关有限公司", "Customs Brokerage Co., Ltd."),
    "terminal": ("集装箱码头有限公司", "Container Terminal Co., Ltd."),
    "offport_yard": ("集装箱堆场有限公司", "Container Yard Co., Ltd."),
    "tally": ("外轮理货有限公司", "Ocean Shipping Tally Co., Ltd."),
    "trucking": ("集装箱运输有限公司", "Container Transport Co., Ltd."),
    "warehouse": ("仓储物流有限公司", "Warehousing & Logistics Co., Ltd."),
    "other": ("港口服务有限公司", "Port Services Co., Ltd."),
}
DEMO_MARK_ZH = "（演示）"
DEMO_MARK_EN = " (demo)"

D = Decimal
#: code → (currency, {container size or "": typical amount}); per-day fees carry tiers instead.
PRICES: dict[str, tuple[str, dict[str, Decimal]]] = {
    "THC": ("CNY", {"20": D(1050), "40": D(1600), "40HQ": D(1600), "45": D(1800)}),
    "DOC": ("CNY", {"": D(450)}), "EIR": ("CNY", {"20": D(80), "40": D(120), "40HQ": D(120)}),
    "SEAL": ("CNY", {"": D(50)}), "TLX": ("CNY", {"": D(400)}), "DO": ("CNY", {"": D(450)}),
    "AMD": ("CNY", {"": D(300)}), "BLR": ("CNY", {"": D(500)}), "MANIFEST": ("CNY", {"": D(150)}),
    "AMS": ("USD", {"": D(30)}), "CLEAN": ("CNY", {"20": D(60), "40": D(100), "40HQ": D(100)}),
    "EQM": ("CNY", {"20": D(100), "40": D(150), "40HQ": D(150)}),
    "BAF": ("USD", {"20": D(120), "40": D(240), "40HQ": D(240)}),
    "LSS": ("USD", {"20": D(25), "40": D(50), "40HQ": D(50)}),
    "PSS": ("USD", {"20": D(300), "40": D(600), "40HQ": D(600)}),
    "CIC": ("CNY", {"20": D(200), "40": D(400), "40HQ": D(400)}),
    "PCS": ("USD", {"20": D(100), "40": D(200), "40HQ": D(200)}),
    "PHC": ("CNY", {"20": D(780), "40": D(1180), "40HQ": D(1180), "45": D(1350)}),
    "CPD": ("CNY", {"": D("5.60")}),
    "STORAGE": ("CNY", {"20": D(20), "40": D(40), "40HQ": D(40)}),
    "PILOT": ("CNY", {"": D(5800)}), "TUG": ("CNY", {"": D(9500)}), "BERTH": ("CNY", {"": D(2600)}),
    "OILBOOM": ("CNY", {"": D(3000)}), "SUPPLY": ("CNY", {"": D(800)}), "WASTE": ("CNY", {"": D(1500)}),
    "LOLO": ("CNY", {"20": D(180), "40": D(260), "40HQ": D(260)}),
    "GATE": ("CNY", {"20": D(50), "40": D(80), "40HQ": D(80)}),
    "YARD": ("CNY", {"20": D(150), "40": D(220), "40HQ": D(220)}),
    "STUFF": ("CNY", {"20": D(550), "40": D(850), "40HQ": D(850)}),
    "STRIP": ("CNY", {"20": D(550), "40": D(850), "40HQ": D(850)}),
    "REPAIR": ("CNY", {"": D(300)}), "INSPMOVE": ("CNY", {"20": D(300), "40": D(450), "40HQ": D(450)}),
    "CUSTOMS": ("CNY", {"": D(200)}), "INSPDECL": ("CNY", {"": D(150)}), "INSPAGENT": ("CNY", {"": D(300)}),
    "CUSTSEAL": ("CNY", {"": D(50)}), "TRANSIT": ("CNY", {"": D(250)}),
    "BOOKING": ("CNY", {"": D(150)}), "HANDLING": ("CNY", {"": D(300)}), "AGENCY": ("CNY", {"": D(350)}),
    "TALLY": ("CNY", {"20": D(35), "40": D(55), "40HQ": D(55)}), "TALLYDOC": ("CNY", {"": D(200)}),
    "TRUCK": ("CNY", {"20": D(1400), "40": D(1800), "40HQ": D(1800)}),
    "FUMIG": ("CNY", {"20": D(300), "40": D(450), "40HQ": D(450)}),
    "DISINF": ("CNY", {"20": D(100), "40": D(150), "40HQ": D(150)}),
    "EDI": ("CNY", {"": D(20)}), "TIS": ("CNY", {"": D(30)}),
    "DET": ("CNY", {"20": D(85), "40": D(170), "40HQ": D(170)}),
    # Abolished or merged types: only the planted irregularities charge them.
    "OLDSTOR": ("CNY", {"20": D(25)}), "TUGFUEL": ("CNY", {"": D(1200)}), "ISPS": ("CNY", {"20": D(10)}),
}

#: Day bands for time-based fees, as multiples of the first paid band's daily amount.
TIER_SHAPES = {
    "DET": ((7, 14, 1), (15, 21, 2), (22, None, 4)),
    "STORAGE": ((4, 10, 1), (11, 20, 2), (21, None, 3)),
}

#: The local charges a firm of the category publishes first (a shipment quote expects them).
CORE_FEES = {
    "shipping_line": ("THC", "DOC", "EIR", "SEAL", "MANIFEST", "DO", "TLX", "DET"),
    "shipping_agent": ("THC", "DOC", "EIR", "SEAL", "MANIFEST", "DO"),
    "forwarder": ("HANDLING", "BOOKING", "DOC", "CUSTOMS"),
    "customs_broker": ("CUSTOMS", "INSPDECL", "INSPAGENT"),
    "terminal": ("PHC", "STORAGE"),
    "offport_yard": ("LOLO", "STORAGE", "GATE"),
    "tally": ("TALLY",),
    "trucking": ("TRUCK",),
    "warehouse": ("STUFF", "STRIP", "STORAGE"),
}

#: Fee types that only some firms of a category publish (the rest, most do).
OCCASIONAL = {"AMS", "PSS", "PCS", "CIC", "BLR", "TRANSIT", "REPAIR", "INSPMOVE", "OILBOOM", "SUPPLY", "WASTE"}

#: The firm's own spelling of a fee name, sometimes: (zh, en) variants of the catalog name.
NAME_VARIANTS = {
    "LOLO": (("港外堆场吊箱费", "Off-dock yard lift-on/lift-off fee"), ("吊箱费", "Lift-on/lift-off fee")),
    "DOC": (("文件费", "Documentation fee"), ("出口文件费", "Export documentation fee")),
    "THC": (("码头操作费", "Terminal handling charge"), ("码头作业费", "Terminal handling charge (THC)")),
    "EIR": (("设备交接单费", "Equipment interchange receipt fee"), ("集装箱设备交接单费", "Container EIR fee")),
    "CLEAN": (("洗箱费", "Container cleaning fee"), ("集装箱清洗费", "Container clean fee")),
    "CUSTOMS": (("报关费", "Customs declaration fee"), ("代理报关费", "Customs declaration agency fee")),
    "DO": (("换单费", "Delivery order fee"), ("进口换单费", "Import D/O fee")),
}

#: Fee types tied to a direction of trade.
DIRECTION = {"DO": "import", "TLX": "export", "AMS": "export", "BOOKING": "export", "STUFF": "export",
             "STRIP": "import", "MANIFEST": "export", "EIR": ""}

SERVICE_CONTENT = {
    "shipping": "按提单或箱量收取，含{zh}相关单证制作与系统操作",
    "terminal": "码头装卸、堆场作业及相关{zh}服务",
    "yard": "港外堆场提还箱、堆存与{zh}作业",
    "customs": "代理办理{zh}相关申报手续，含单证审核与系统录入",
    "agency": "订舱、操作与{zh}等代理服务",
    "tally": "船舶装卸理货及{zh}相关单证",
    "trucking": "码头或堆场与工厂间集装箱拖运（{zh}）",
    "government": "{zh}，按政府规定标准收取",
    "other": "{zh}服务",
}

LEGAL_BASIS = {
    "government_set": "《港口收费计费办法》（交水规〔2019〕2号）",
    "government_guided": "《港口收费计费办法》（交水规〔2019〕2号）及广东省价格主管部门文件",
}
