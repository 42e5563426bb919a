"""PDF benchmark: time and peak memory to render a firm's schedule of 50, 500 and 5,000 items.

    .venv/bin/python benchmarks/pdf_bench.py [--sizes 50 500 5000] [--lang zh]

Each figure comes from a fresh process (peak memory is the process's max RSS, which
includes Pango and the font, not only Python objects), after one small warm-up render
that loads WeasyPrint and the font, as a running server would have. Two renderings of
the same HTML (templates/print/schedule.html) are timed side by side:

* feereg — feereg.exports.pdf.render_pdf: static/print.css (fixed table layout and column
  widths, separate borders, rows shaded alternately instead of a rule under every cell, line
  breaks in cells as newlines rather than <br>) and WeasyPrint's user-agent stylesheet without
  the pseudo-element rules that match every element;
* naive  — plain WeasyPrint and a bordered table: `border-collapse: collapse`, automatic layout, a
  border on every cell (what a first stylesheet usually looks like).

It also prints the time of a repeated download of an unchanged schedule (the on-disk
cache keyed by the chain head). No database: the rows are synthetic, varied like demo
data (Chinese names, service texts, tiers, several ports).

A timed test would be flaky; this prints figures to compare runs on one machine.
"""
from __future__ import annotations

import argparse
import json
import random
import resource
import subprocess
import sys
import tempfile
import time
from datetime import date
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

NAIVE_CSS = """
@page { size: A4; margin: 18mm 14mm; }
html { font-family: "WenQuanYi Micro Hei", sans-serif; font-size: 9pt; }
table { border-collapse: collapse; width: 100%; }
th, td { border: 1px solid #888; padding: 4px; text-align: left; vertical-align: top; }
"""

NAMES = ["码头操作费", "港外堆场吊箱费", "堆存费", "文件费", "洗箱费", "修箱费", "冷藏箱电费", "铅封费",
         "设备交接单费", "超期使用费", "集装箱检查费", "舱单录入费", "报关费", "拖车费", "理货费"]
SERVICES = ["签发提单及相关单证", "集装箱进出场吊装作业，含一次吊上吊下", "按日计收，自进场次日起算",
            "", "冷藏箱插电及温度监控，每日两次巡检记录", "危险品箱另行申报，按港口规定执行"]
PORTS = ["YANTIAN", "SHEKOU", "CHIWAN", "MAWAN", "YANTIAN;SHEKOU", "DACHANBAY"]
UNITS = ["per_container", "per_bl", "per_container_day", "per_shipment", "per_teu"]


def synthetic_schedule(n: int, seed: int = 7) -> tuple[SimpleNamespace, list[SimpleNamespace]]:
    rng = random.Random(seed)
    firm = SimpleNamespace(
        credit_code="91440300MA5D0000X1", name_zh="深圳市演示国际货运代理有限公司", name_en="Demo Forwarding Co.",
        category="forwarder", chain_head="9f" * 32, chain_seq=n + 17, status="active", status_reason="",
        is_suspended=False, display_name=lambda lang: "深圳市演示国际货运代理有限公司")
    versions = []
    for i in range(n):
        unit = rng.choice(UNITS)
        versions.append(SimpleNamespace(
            item_id=i + 1, fee_type_code=rng.choice(["THC", "LOLO", "STORAGE", "DOC", "CLEAN", "SEAL"]),
            fee_code=f"F{i:05d}", name_zh=rng.choice(NAMES) + ("（冷藏）" if i % 7 == 0 else ""),
            name_en="", unit=unit, container_size=rng.choice(["", "20", "40", "40HQ"]),
            cargo_scope=rng.choice(["", "", "reefer", "dangerous_goods"]), trade=rng.choice(["", "foreign"]),
            direction=rng.choice(["", "export", "import"]), amount=Decimal(rng.randint(1000, 500000)) / 100,
            currency=rng.choice(["CNY", "CNY", "CNY", "USD"]), tax_included=rng.random() > 0.2,
            tiers="free:7;8-14:85;15-21:170;22-:340" if unit == "per_container_day" else "",
            pricing_basis=rng.choice(["market", "government_guided"]), service_content=rng.choice(SERVICES),
            ports=rng.choice(PORTS), effective_from=date(2026, 1 + i % 12, 1 + i % 28)))
    return firm, versions


def measure(n: int, kind: str, lang: str) -> dict:
    """One figure, in this (fresh) process."""
    import weasyprint

    from feereg import create_app
    from feereg.exports import pdf

    with tempfile.TemporaryDirectory() as tmp:
        app = create_app({"SQLALCHEMY_DATABASE_URI": "sqlite://", "SECRET_KEY": "bench", "TESTING": True,
                          "SEARCH_BACKEND": "null", "PDF_CACHE_DIR": tmp})
        with app.test_request_context(f"/?lang={lang}"):
            firm, versions = synthetic_schedule(n)
            small_firm, small = synthetic_schedule(5, seed=1)
            pdf.render_pdf("print/schedule.html", firm=small_firm, schedule=small, as_of=date(2026, 11, 1))
            rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            started = time.perf_counter()
            if kind == "feereg":
                body = pdf.render_pdf("print/schedule.html", firm=firm, schedule=versions, as_of=date(2026, 11, 1))
            elif kind == "naive":
                from flask import render_template
                html = render_template("print/schedule.html", firm=firm, schedule=versions,
                                       as_of=date(2026, 11, 1), generated_at=date(2026, 11, 1))
                body = weasyprint.HTML(string=html).write_pdf(stylesheets=[weasyprint.CSS(string=NAIVE_CSS)])
            else:  # cached: the second download of an unchanged schedule
                pdf.schedule_pdf(firm, date(2026, 11, 1), lang, lambda: versions)
                started = time.perf_counter()
                body = pdf.schedule_pdf(firm, date(2026, 11, 1), lang, lambda: versions)
            seconds = time.perf_counter() - started
    from pypdf import PdfReader
    import io
    pages = len(PdfReader(io.BytesIO(body)).pages)
    rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"seconds": seconds, "peak_mb": rss_after / 1024, "growth_mb": (rss_after - rss_before) / 1024,
            "pages": pages, "kb": len(body) / 1024}


def run_child(n: int, kind: str, lang: str) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", str(n), kind, "--lang", lang],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[50, 500, 5000])
    parser.add_argument("--lang", default="zh", choices=("zh", "en"))
    parser.add_argument("--child", nargs=2, metavar=("ITEMS", "KIND"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(int(args.child[0]), args.child[1], args.lang)))
        return
    print(f"{'items':>6} {'stylesheet':<8} {'seconds':>8} {'pages':>6} {'PDF KB':>8} {'peak MB':>8} {'+MB':>7}")
    for n in args.sizes:
        for kind in ("feereg", "naive", "cached"):
            r = run_child(n, kind, args.lang)
            print(f"{n:>6} {kind:<8} {r['seconds']:>8.3f} {r['pages']:>6} {r['kb']:>8.0f} {r['peak_mb']:>8.0f} "
                  f"{r['growth_mb']:>7.0f}", flush=True)


if __name__ == "__main__":
    main()
