"""The Whoosh backend: distinct texts in a Whoosh index, items in the SQLite store beside it.

Writes are short and take the writer lock with a timeout (no AsyncWriter): a busy lock,
a damaged or missing index raises, the after-commit hook logs it, and the items stay in
a pending file until the next write or `feereg reindex` catches up. A rebuild writes
into a fresh directory and swaps it in, so searches keep working while it runs.
"""
from __future__ import annotations

import gc
import logging
import os
import shutil
import tempfile
import threading
import warnings
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Callable

import numpy as np
from sqlalchemy import select
from sqlalchemy.engine import Connection, Engine
from whoosh import index as whoosh_index
from whoosh.fields import ID, TEXT, Schema

from . import analysis, postings
from .base import SearchResult, SearchUnavailable
from .documents import RowBuilder, Text, every_text, firm_texts, item_rows
from .query import ParsedQuery
from .store import PendingItems, Store

log = logging.getLogger(__name__)

INDEX_NAME = "texts"


def make_schema() -> Schema:
    return Schema(
        key=ID(unique=True, stored=True, sortable=True),
        uni=TEXT(analyzer=analysis.unigram_analyzer(), phrase=False),
        pairs=TEXT(analyzer=analysis.pair_analyzer(), phrase=True),
        pinyin=TEXT(analyzer=analysis.pinyin_analyzer(), phrase=False),
    )


def _document(text: Text) -> dict:
    return {"key": text.key, "uni": text.text, "pairs": text.text, "pinyin": text.text if text.pinyin else ""}


class WhooshBackend:
    name = "whoosh"

    def __init__(self, directory: str | Path, engine: Engine, rates: dict, today: Callable[[], date],
                 writer_timeout: float = 5.0):
        self.directory = Path(directory)
        self.engine = engine
        self.rates = rates
        self.today = today
        self.writer_timeout = writer_timeout
        self.store = Store(self.directory)
        #: Items whose index write failed, kept beside the directory (a rebuild replaces it).
        self.pending = PendingItems(self.directory.with_name(self.directory.name + ".pending"))
        self._lock = threading.Lock()
        self._searcher = None
        self._decoded = None

    # --- state -------------------------------------------------------------------

    def exists(self) -> bool:
        """An index is there (perhaps damaged: opening it says so). Whoosh's own test opens
        the table of contents, which raises on a damaged one."""
        return self.store.path.exists() and any(self.directory.glob(f"_{INDEX_NAME}_*.toc"))

    def _index(self):
        # Whoosh leaves the table-of-contents file open when it cannot read it; the
        # warning its finaliser raises is noise here (the failure itself is reported).
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ResourceWarning)
            try:
                return whoosh_index.open_dir(self.directory, indexname=INDEX_NAME)
            except Exception as exc:  # missing, half-written or damaged: all the same to the user
                failure = SearchUnavailable(f"{type(exc).__name__}: {exc}")
            gc.collect()
        raise failure

    # --- writing -----------------------------------------------------------------

    def index_items(self, item_ids: list[int]) -> None:
        """Bring these items up to date, and any that an earlier write failed to index.

        A failed write leaves its items in the pending file (so the index is known to be
        stale and the next write or `feereg reindex` catches up) and raises: the caller,
        an after-commit hook, logs it and the database change stands."""
        if not item_ids:
            return
        rebuilding = self._rebuilding()
        if rebuilding:
            # The rebuild may swap in a directory built before this change was committed:
            # it indexes what is pending once its directory is in place.
            self.pending.add(item_ids)
        owed = self.pending.read()
        try:
            # After a failed write the index and the store may disagree: every text is written.
            self._write_items(sorted(set(item_ids) | owed), rewrite_texts=bool(owed))
        except BaseException:
            self.pending.add(item_ids)
            raise
        if owed and not rebuilding:
            self.pending.discard(owed)

    def _write_items(self, item_ids: list[int], rewrite_texts: bool = True) -> None:
        if not self.exists():
            raise SearchUnavailable(f"no search index in {self.directory}")
        with self.engine.connect() as conn:
            # Only these items' firms: every firm's category is a scan of the directory.
            builder = RowBuilder(conn, self.rates, self.today(), firm_ids=_firms_of(conn, item_ids))
            rows = [row for batch in item_rows(conn, builder, item_ids) for row in batch]
            texts = list(builder.texts.values()) + list(firm_texts(conn, {r.firm_id for r in rows}))
        stored = {} if rewrite_texts else self.store.stored_texts([t.key for t in texts])
        # A text the index already holds, word for word, is not written again: most
        # publishes change an amount, not a name. The store's text table is written only
        # after the index commits, so what it holds the index holds. A key it does not hold
        # is new to the index too and is added without the delete an update costs (an
        # update opens a reader over every segment: most of a publish at a million items).
        changed = [t for t in texts if stored.get(t.key) != analysis.normalise(t.text)]
        # Texts first: an item row whose text is missing would be unfindable, a text without
        # items finds nothing.
        with _whoosh_leaks_ignored():
            try:
                if changed:
                    writer = self._index().writer(timeout=self.writer_timeout)
                    try:
                        for text in changed:
                            if rewrite_texts or text.key in stored:
                                writer.update_document(**_document(text))
                            else:
                                writer.add_document(**_document(text))
                    except BaseException:
                        writer.cancel()
                        raise
                    writer.commit()
                self.store.replace_items(item_ids, rows, changed)
            except Exception as exc:  # locked, damaged or unwritable: the same to the caller
                failure = _describe(exc)
            else:
                return
            gc.collect()
        raise SearchUnavailable(failure)

    def remove(self, item_ids: list[int]) -> None:
        self.store.replace_items(item_ids, [])

    def rebuild(self, progress: Callable[[int], None] | None = None) -> int:
        self.directory.parent.mkdir(parents=True, exist_ok=True)
        owed = self.pending.read()  # read before the database: the build covers these
        marker = self._rebuild_marker()
        marker.write_text(str(os.getpid()))
        staging = Path(tempfile.mkdtemp(prefix=self.directory.name + ".build-", dir=self.directory.parent))
        try:
            count = self._build(staging, progress)
            self._swap_in(staging)
        finally:
            marker.unlink(missing_ok=True)
            if staging.exists():
                shutil.rmtree(staging, ignore_errors=True)
        self.pending.discard(owed)
        late = self.pending.read()
        if late:  # committed while the build read the database: written to the old directory
            try:
                self.index_items(sorted(late))
            except SearchUnavailable:  # still pending: the next write catches up
                log.warning("search: %d items committed during the rebuild are still pending", len(late),
                            exc_info=True)
        return count

    def _rebuild_marker(self) -> Path:
        return self.directory.with_name(self.directory.name + ".rebuilding")

    def _rebuilding(self) -> bool:
        try:
            pid = int(self._rebuild_marker().read_text() or 0)
        except (FileNotFoundError, ValueError):
            return False
        try:
            os.kill(pid, 0)
        except ProcessLookupError:  # a rebuild killed before it finished: no longer one
            self._rebuild_marker().unlink(missing_ok=True)
            return False
        except PermissionError:  # alive, another user's
            pass
        return True

    def stale(self) -> bool:
        """Some committed change is not in the index yet (a write failed)."""
        return bool(self.pending.read())

    def _build(self, target: Path, progress) -> int:
        store = Store(target)
        conn = store.create()
        count = 0
        with self.engine.connect() as db:
            builder = RowBuilder(db, self.rates, self.today())
            conn.execute("BEGIN")
            for batch in item_rows(db, builder):
                store.insert(conn, batch)
                count += len(batch)
                if progress:
                    progress(len(batch))
            texts = every_text(db, builder)
            store.write_texts(conn, texts.values())
            conn.execute("COMMIT")
            store.finish_bulk(conn)
            conn.close()
        ix = whoosh_index.create_in(target, make_schema(), indexname=INDEX_NAME)
        writer = ix.writer(limitmb=256)
        for text in texts.values():
            writer.add_document(**_document(text))
        writer.commit()
        return count

    def _swap_in(self, staging: Path) -> None:
        with self._lock:
            self._close_searcher()
            old = None
            if self.directory.exists():
                old = self.directory.with_name(f"{self.directory.name}.old-{os.getpid()}")
                shutil.rmtree(old, ignore_errors=True)
                os.replace(self.directory, old)
            os.replace(staging, self.directory)
            if old is not None:
                shutil.rmtree(old, ignore_errors=True)

    # --- reading -----------------------------------------------------------------

    def _current_searcher(self):
        if self._searcher is None:
            self._searcher = self._index().searcher()
        else:
            self._searcher = self._searcher.refresh()
        return self._searcher

    def _close_searcher(self):
        if self._searcher is not None:
            self._searcher.close()
            self._searcher = None

    def matches(self, query: ParsedQuery) -> list[dict[str, list]]:
        """Per term, the refs of the matching texts by kind."""
        out = []
        with self._lock, _whoosh_leaks_ignored():
            try:
                searcher = self._current_searcher()
                decoded = self._decode(searcher)
                for term in query.terms:
                    docs, phrases = _term_docs(searcher, term)
                    if phrases and len(docs):
                        docs = self._verified(docs, decoded, phrases)
                    out.append(decoded.by_kind(docs))
            except Exception as exc:  # a damaged segment shows up only when read
                failure = _describe(exc)
            else:
                return out
            self._close_searcher()
            self._decoded = None
            gc.collect()
        raise SearchUnavailable(failure)

    def _decode(self, searcher) -> "_Decoded":
        """docnum → key, kind and ref, decoded once per reader: a term matching every firm
        name would otherwise read and split a hundred thousand keys."""
        reader = searcher.reader()
        if self._decoded is None or self._decoded.reader is not reader:
            self._decoded = _Decoded(reader, list(reader.column_reader("key")))
            self.store.texts(())  # the phrase checks' texts, read with the keys rather than by a query
        return self._decoded

    def _verified(self, docs: np.ndarray, decoded: "_Decoded", phrases: list[str]) -> np.ndarray:
        """The candidates that hold each CJK run — a character or pair as a token, a longer
        run as a phrase of pairs in order: what Whoosh's Phrase query finds, without reading
        positions (which made a name shared by 60,000 firms take a second)."""
        keys = [decoded.keys[d] for d in docs.tolist()]
        texts = self.store.texts(keys)
        keep = np.zeros(len(docs), dtype=bool)
        for index, key in enumerate(keys):
            text = texts.get(key)
            if text is not None and all(run in text or (len(run) > 2 and _in_order(analysis.bigrams(run), text))
                                        for run in phrases):
                keep[index] = True
        return docs[keep]

    def search(self, query: ParsedQuery, filters: dict, sort: str, page: int, per_page: int) -> SearchResult:
        if not self.store.path.exists():
            raise SearchUnavailable(f"no search index in {self.directory}")
        matches = self.matches(query)
        try:
            hits, total, facets = self.store.search(matches, filters, sort, page, per_page, self.today())
        except Exception as exc:  # sqlite3.DatabaseError on a damaged file
            raise SearchUnavailable(str(exc)) from exc
        return SearchResult(hits, total, facets)

    def live_item_ids(self) -> set[int]:
        return self.store.live_item_ids(self.today())


#: Item ids per IN (...) when looking up their firms: within every database's parameter limit.
_FIRM_LOOKUP_CHUNK = 900


def _firms_of(conn: Connection, item_ids: list[int]) -> set[int]:
    """The firms of these items (an item never changes firm)."""
    from ..models import FeeItem

    firms: set[int] = set()
    for start in range(0, len(item_ids), _FIRM_LOOKUP_CHUNK):
        chunk = item_ids[start:start + _FIRM_LOOKUP_CHUNK]
        firms.update(conn.execute(select(FeeItem.firm_id).where(FeeItem.id.in_(chunk)).distinct()).scalars())
    return firms


def _describe(exc: Exception) -> str:
    return str(exc) if isinstance(exc, SearchUnavailable) else f"{type(exc).__name__}: {exc}"


@contextmanager
def _whoosh_leaks_ignored():
    """Whoosh leaves open the files of an index it could not read, in reference cycles:
    the caller collects them (gc) inside this block once the failure is handled, rather
    than have them warned about at some later collection far from the cause."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        yield


def _in_order(pairs: list[str], text: str) -> bool:
    """The pairs are consecutive tokens of the text's pair field (a phrase match)."""
    tokens = analysis.pair_tokens(text)
    n = len(pairs)
    return any(tokens[i:i + n] == pairs for i in range(len(tokens) - n + 1))


def _term_docs(searcher, term) -> tuple[np.ndarray, list[str]]:
    """One term: the documents holding all its pieces. CJK: a character, a pair, or every
    pair of a longer run; Latin: the stemmed word, or pinyin.

    Returns the documents and the CJK runs the caller must find in each document's text:
    a Chinese-only term reads the postings of its rarest token only (a pair like 深圳 is in
    every firm's name) and leaves every run to that check; a longer run in a mixed term
    has its pairs intersected, and is checked for their order."""
    if all(kind == "cjk" for kind, _ in term.pieces):
        runs = [piece for _, piece in term.pieces]
        tokens = [("uni", run) if len(run) == 1 else ("pairs", pair) for run in runs
                  for pair in (analysis.bigrams(run) if len(run) > 1 else [run])]
        rarest = min(dict.fromkeys(tokens), key=lambda token: searcher.doc_frequency(*token))
        docs = postings.postings(searcher, *rarest)
        single = len(runs) == 1 and len(runs[0]) <= 2
        return docs, ([] if single else runs)
    parts, phrases = [], []
    for kind, piece in term.pieces:
        if kind == "cjk":
            if len(piece) == 1:
                parts.append(postings.postings(searcher, "uni", piece))
            elif len(piece) == 2:
                parts.append(postings.postings(searcher, "pairs", piece))
            else:
                parts.extend(postings.postings(searcher, "pairs", pair) for pair in dict.fromkeys(analysis.bigrams(piece)))
                phrases.append(piece)
        else:
            options = [postings.postings(searcher, "pairs", analysis.latin_term(piece))]
            if piece.isalpha() and len(piece) >= 2:
                options.append(postings.postings(searcher, "pinyin", piece))
            parts.append(postings.union(options))
    return postings.intersect(parts), phrases


class _Decoded:
    """One reader's document keys, and their kinds and numeric refs as arrays."""

    #: Kinds whose ref is a number (a text's key or a firm id); the others are codes.
    NUMERIC = "ncf"

    def __init__(self, reader, keys: list[str]):
        self.reader = reader
        self.keys = keys
        kinds = [key.split(":", 1)[0] for key in keys]
        self.kind_names = sorted(set(kinds))
        code = {k: i for i, k in enumerate(self.kind_names)}
        self.kinds = np.array([code[k] for k in kinds], dtype=np.int8)
        self.numeric = np.array([int(key.split(":", 1)[1]) if k in self.NUMERIC else -1
                                 for key, k in zip(keys, kinds)], dtype=np.int64)

    def by_kind(self, docs: np.ndarray) -> dict[str, list]:
        found: dict[str, list] = {}
        kinds = self.kinds[docs]
        for code in np.unique(kinds).tolist():
            kind = self.kind_names[code]
            chosen = docs[kinds == code]
            if kind in self.NUMERIC:
                found[kind] = self.numeric[chosen].tolist()
            else:
                found[kind] = [self.keys[d].split(":", 1)[1] for d in chosen.tolist()]
        return found
