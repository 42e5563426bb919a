"""What the search index is made of, read from the database (the source of truth).

Two kinds of records:

* item rows — one per span of time in which an item's published version is in force
  (from its effective date to the next change, open-ended for the last). Storing spans,
  not "the current version", keeps the index right when an announced change takes
  effect at midnight without anybody writing to it.
* texts — the distinct vocabulary: fee names, service contents, firm names, the
  catalog's types, ports and categories. A million items share a few thousand fee
  names, so the full-text index grows with the vocabulary, not the item count.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Iterable, Iterator

from sqlalchemy import select
from sqlalchemy.engine import Connection

from .. import codes
from ..models import FeeItemVersion, FeeType, Firm

#: Relevance weight of a match, by the kind of text that matched.
KIND_WEIGHTS = {"n": 8, "t": 4, "f": 2, "p": 1, "g": 1, "c": 1}


def text_key(text: str) -> int:
    """A stable 62-bit key for a distinct text, the same in every process and database."""
    return int.from_bytes(hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest(), "big") >> 2


def name_text(name_zh: str, name_en: str) -> str:
    return f"{name_zh}\n{name_en or ''}"


@dataclass(frozen=True)
class ItemRow:
    item_id: int
    version_id: int
    firm_id: int
    valid_from: date
    #: Exclusive; None while no later change is published.
    valid_until: date | None
    fee_type: str
    name_key: int
    content_key: int
    category: str
    currency: str
    pricing_basis: str
    amount_cents: int
    cny_cents: int
    ports: str


@dataclass(frozen=True)
class Text:
    kind: str  # n name, c content, f firm, t fee type, p port, g category
    ref: str
    text: str
    pinyin: bool

    @property
    def key(self) -> str:
        return f"{self.kind}:{self.ref}"


_VERSION_COLUMNS = (
    FeeItemVersion.item_id, FeeItemVersion.id, FeeItemVersion.kind, FeeItemVersion.effective_from,
    FeeItemVersion.seq, FeeItemVersion.firm_id, FeeItemVersion.fee_type_code, FeeItemVersion.name_zh,
    FeeItemVersion.name_en, FeeItemVersion.service_content, FeeItemVersion.currency,
    FeeItemVersion.pricing_basis, FeeItemVersion.amount, FeeItemVersion.ports,
)


def _cents(amount: Decimal) -> int:
    return int((Decimal(amount) * 100).to_integral_value())


class RowBuilder:
    def __init__(self, conn: Connection, rates_config, today: date, firm_ids: Iterable[int] | None = None):
        from ..services.rates import rates_on

        self.today = today
        # Sorting by amount ranks in CNY at today's rates; a rate change is picked up by reindex.
        self.rates = rates_on(today, rates_config).rates
        stmt = select(Firm.id, Firm.category)
        if firm_ids is None:
            self.categories = dict(conn.execute(stmt).all())
        else:  # a publish's few firms: every firm's is a scan of the directory
            firm_ids = sorted(set(firm_ids))
            self.categories = {}
            for start in range(0, len(firm_ids), 900):  # within every database's parameter limit
                self.categories.update(conn.execute(stmt.where(Firm.id.in_(firm_ids[start:start + 900]))).all())
        self.texts: dict[str, Text] = {}

    def spans(self, versions: list) -> Iterator[ItemRow]:
        """The in-force spans of one item, from its versions ordered by (effective_from, seq)."""
        by_day = {}
        for v in versions:  # the last published change for a day wins
            by_day[v.effective_from] = v
        days = sorted(by_day)
        for index, day in enumerate(days):
            v = by_day[day]
            until = days[index + 1] if index + 1 < len(days) else None
            if v.kind != "publish" or (until is not None and until <= self.today):
                continue
            yield self._row(v, day, until)

    def _row(self, v, day: date, until: date | None) -> ItemRow:
        name = name_text(v.name_zh, v.name_en)
        name_key, content_key = text_key(name), text_key(v.service_content or "")
        self._text("n", str(name_key), name, True)
        if v.service_content:
            self._text("c", str(content_key), v.service_content, False)
        rate = self.rates.get(v.currency, Decimal(1))
        return ItemRow(
            v.item_id, v.id, v.firm_id, day, until, v.fee_type_code, name_key, content_key,
            self.categories.get(v.firm_id, ""), v.currency, v.pricing_basis, _cents(v.amount),
            _cents(v.amount * rate), v.ports or "",
        )

    def _text(self, kind: str, ref: str, text: str, pinyin: bool) -> None:
        key = f"{kind}:{ref}"
        if key not in self.texts:
            self.texts[key] = Text(kind, ref, text, pinyin)


def item_rows(conn: Connection, builder: RowBuilder, item_ids: Iterable[int] | None = None,
              batch: int = 5000) -> Iterator[list[ItemRow]]:
    """Spans of the given items (all items when None), in batches, streamed from the database."""
    stmt = select(*_VERSION_COLUMNS).order_by(
        FeeItemVersion.item_id, FeeItemVersion.effective_from, FeeItemVersion.seq)
    if item_ids is not None:
        stmt = stmt.where(FeeItemVersion.item_id.in_(list(item_ids)))
    # Streamed per statement: Connection.execution_options() would change the caller's
    # connection for good (it may be a session's, inside a publish).
    result = conn.execute(stmt.execution_options(yield_per=batch))
    out: list[ItemRow] = []
    current, pending = None, []
    for row in result:
        if row.item_id != current and pending:
            out.extend(builder.spans(pending))
            pending = []
            if len(out) >= batch:
                yield out
                out = []
        current = row.item_id
        pending.append(row)
    if pending:
        out.extend(builder.spans(pending))
    if out:
        yield out


def firm_texts(conn: Connection, firm_ids: Iterable[int] | None = None) -> Iterator[Text]:
    stmt = select(Firm.id, Firm.name_zh, Firm.name_en, Firm.credit_code).order_by(Firm.id)
    if firm_ids is not None:
        stmt = stmt.where(Firm.id.in_(list(firm_ids)))
    for firm_id, zh, en, code in conn.execute(stmt):
        # Firm names are as many as firms: no pinyin for them, to keep a big index small.
        yield Text("f", str(firm_id), f"{zh}\n{en}\n{code}", False)


def every_text(conn: Connection, builder: RowBuilder) -> dict[str, Text]:
    """What a rebuild indexes besides the items, by key: the texts `builder` collected from
    every item, the catalog's, ports' and categories', and every firm's name."""
    texts = dict(builder.texts)
    texts.update((t.key, t) for t in fixed_texts(conn))
    texts.update((t.key, t) for t in firm_texts(conn))
    return texts


def fixed_texts(conn: Connection) -> Iterator[Text]:
    """The catalog's types (code, names, aliases: the synonyms), ports and categories."""
    for code, zh, en, aliases in conn.execute(
            select(FeeType.code, FeeType.name_zh, FeeType.name_en, FeeType.aliases)):
        yield Text("t", code, "\n".join([code, zh, en, *codes.split_list(aliases)]), True)
    for code, entry in codes.PORTS.items():
        yield Text("p", code, f"{code}\n{entry.zh}\n{entry.en}", True)
    for code, entry in codes.CATEGORIES.items():
        yield Text("g", code, f"{entry.zh}\n{entry.en}", True)
