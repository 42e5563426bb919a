"""The fee catalog: loading it, and mapping a firm's own fee name to a catalog type."""
from __future__ import annotations

import csv
import difflib
import re
import time
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from types import MappingProxyType
from weakref import WeakKeyDictionary

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..codes import Code, split_list
from ..models import FeeType
from . import audit, snapshot

CATALOG_FILE = Path(__file__).resolve().parent.parent / "data" / "fee_catalog.csv"

_CJK = re.compile(r"[\u3400-\u9fff]")


def normalise_name(text: str) -> str:
    """Fold the spellings of one name together: full-width forms, case, spaces, punctuation."""
    text = unicodedata.normalize("NFKC", text or "").lower()
    return re.sub(r"[\s\-_/.·・（）()\[\]【】:：,，]+", "", text)


def read_catalog_file(path: Path = CATALOG_FILE) -> list[dict]:
    with open(path, encoding="utf-8-sig", newline="") as fh:
        return list(csv.DictReader(fh))


def _row_values(row: dict) -> dict:
    return dict(
        name_zh=row["name_zh"].strip(),
        name_en=row["name_en"].strip(),
        aliases=";".join(split_list(row.get("aliases"))),
        group=row["group"].strip(),
        unit=row["unit"].strip(),
        pricing_basis=row["pricing_basis"].strip() or "market",
        pass_through=row.get("pass_through", "").strip().lower() in ("yes", "true", "1"),
        charged_by=";".join(split_list(row.get("charged_by"))),
        abolished_from=date.fromisoformat(row["abolished_from"]) if row.get("abolished_from") else None,
        replaced_by=(row.get("replaced_by") or "").strip(),
        policy_note=(row.get("policy_note") or "").strip(),
    )


def load_catalog(session: Session, path: Path = CATALOG_FILE) -> tuple[int, int]:
    """Insert or update the catalog from its CSV; returns (added, updated)."""
    existing = {ft.code: ft for ft in session.scalars(select(FeeType))}
    added = updated = 0
    for row in read_catalog_file(path):
        code = row["code"].strip()
        values = _row_values(row)
        fee_type = existing.get(code)
        if fee_type is None:
            session.add(FeeType(code=code, **values))
            added += 1
        elif any(getattr(fee_type, k) != v for k, v in values.items()):
            for key, value in values.items():
                setattr(fee_type, key, value)
            updated += 1
    if added or updated:  # comparisons and quotes kept in memory show the names: see snapshot.CATALOG_ACTIONS
        audit.record(session, "catalog.load", added=added, updated=updated)
    session.flush()
    return added, updated


@dataclass(frozen=True)
class Match:
    code: str
    #: The catalog name or alias the input matched.
    via: str
    #: exact, or contained (the firm's name contains a catalog name).
    how: str


def fee_type_names(session: Session, state: str | None = None) -> Mapping[str, Code]:
    """The catalog's names by code, read as plain rows (every search page asks: loading the
    types as ORM objects cost more than the rest of the page's catalog use).

    state: the registry's state token the request read (http_cache.state_seen). Names read
    under the same token are used again, for snapshot.STATE_TRUSTED seconds at most: the
    token is renewed by every commit that writes the catalog, as for the snapshot."""
    engine = snapshot.engine_of(session)
    now = time.monotonic()
    if state is not None:
        held = _names_kept.get(engine)
        if held is not None and held[0] == state and now - held[1] < snapshot.STATE_TRUSTED:
            return held[2]
    names = MappingProxyType({code: Code(code, zh, en) for code, zh, en in
                              session.execute(select(FeeType.code, FeeType.name_zh, FeeType.name_en))})
    if state is not None:
        _names_kept[engine] = (state, now, names)
    return names


#: Per database: (state token, when read, the names) of fee_type_names' last read.
_names_kept: WeakKeyDictionary = WeakKeyDictionary()


class CatalogIndex:
    """Maps names, aliases and codes to catalog types; built once per request or import."""

    #: A contained catalog term must be at least this long to map a name by itself.
    MIN_CONTAINED = 3

    def __init__(self, fee_types: list[FeeType]):
        self.types = {ft.code: ft for ft in fee_types}
        self.terms: dict[str, str] = {}
        self.display: dict[str, str] = {}
        for ft in fee_types:
            for term in [ft.code, ft.name_zh, ft.name_en, *ft.alias_list]:
                key = normalise_name(term)
                if key and key not in self.terms:
                    self.terms[key] = ft.code
                    self.display[key] = term

    @classmethod
    def load(cls, session: Session) -> "CatalogIndex":
        return cls(list(session.scalars(select(FeeType).order_by(FeeType.code))))

    def get(self, code: str) -> FeeType | None:
        return self.types.get((code or "").strip().upper()) or self.types.get((code or "").strip())

    def match(self, name: str) -> Match | None:
        key = normalise_name(name)
        if not key:
            return None
        if key in self.terms:
            return Match(self.terms[key], self.display[key], "exact")
        return self._contained(key)

    def _contained(self, key: str) -> Match | None:
        # "港外堆场吊箱费" names LOLO through its alias "吊箱费": take the longest catalog
        # term inside the name, but only when no other type has a term as long.
        best_len, found = 0, {}
        for term, code in self.terms.items():
            if len(term) < self.MIN_CONTAINED or term not in key:
                continue
            if not _CJK.search(term) and not re.search(rf"(^|[^a-z0-9]){re.escape(term)}([^a-z0-9]|$)", key):
                continue
            if len(term) > best_len:
                best_len, found = len(term), {code: term}
            elif len(term) == best_len:
                found.setdefault(code, term)
        if len(found) == 1:
            code, term = next(iter(found.items()))
            return Match(code, self.display[term], "contained")
        return None

    def suggest(self, name: str, limit: int = 3) -> list[str]:
        """The closest catalog names, as "name (CODE)", for an error message."""
        key = normalise_name(name)
        scored = []
        for term, code in self.terms.items():
            ratio = difflib.SequenceMatcher(None, key, term).ratio()
            if term in key or key in term:
                ratio += 0.5
            scored.append((ratio, term, code))
        scored.sort(key=lambda s: -s[0])
        out, seen = [], set()
        for ratio, term, code in scored:
            if code in seen or ratio < 0.3:
                continue
            seen.add(code)
            ft = self.types[code]
            out.append(f"{ft.name_zh} / {ft.name_en} ({code})")
            if len(out) == limit:
                break
        return out
