"""A term's documents as a numpy array, read from Whoosh's posting blocks.

Whoosh hands out a posting list one document at a time through its matcher: a word in
every firm's name ("深圳", "货运代理", "Shenzhen") has a hundred thousand postings at a
national scale, and walking them that way took most of a search's time. Whoosh 3's leaf
matcher stores a block's ids as one sequence of deltas, so reading block by block and
summing them with numpy gives the same documents at a fraction of the cost; terms are then combined with sorted-array
intersections and unions instead of Whoosh's matcher trees.

The block reading relies on the whoosh3 codec's leaf matcher (`_read_data`, `_data`,
`_next_block`, `_byteids`) and on a reader's `deleted_docs_set`; any other matcher is read through
its public `all_ids()`.
tests/test_search.py checks both against Whoosh's own query results.
"""
from __future__ import annotations

import threading

import numpy as np
from whoosh.reading import TermNotFound

EMPTY = np.zeros(0, dtype=np.int64)


#: A term with at least this many postings in a segment is kept in memory once read:
#: such terms (深圳, 公司, shenzhen) recur in queries and cost the most to read.
CACHE_MIN_POSTINGS = 5_000
#: The most postings kept in memory in all (int32: 4 bytes each).
CACHE_MAX_POSTINGS = 16_000_000


class _SegmentCache:
    """Posting arrays of frequent terms per segment: a segment never changes once written
    (its deletions are applied on each read), so an entry stays right until the segment
    is merged away; least recently used entries go first."""

    def __init__(self):
        self._entries: dict[tuple, np.ndarray] = {}
        self._size = 0
        self._lock = threading.Lock()

    def get(self, key):
        with self._lock:
            found = self._entries.pop(key, None)
            if found is not None:
                self._entries[key] = found  # most recent last
            return found

    def put(self, key, ids: np.ndarray) -> None:
        with self._lock:
            if key in self._entries:
                return
            self._entries[key] = ids
            self._size += len(ids)
            while self._size > CACHE_MAX_POSTINGS and self._entries:
                oldest = next(iter(self._entries))
                self._size -= len(self._entries.pop(oldest))


_cache = _SegmentCache()


def postings(searcher, field: str, text: str) -> np.ndarray:
    """Sorted global document numbers of the live documents holding `text` in `field`."""
    parts = []
    for reader, base in searcher.reader().leaf_readers():
        ids = _segment_postings(reader, field, text)
        if ids is None:
            continue
        if reader.has_deletions():
            deleted = reader.deleted_docs_set
            if deleted:
                ids = ids[~np.isin(ids, np.fromiter(deleted, dtype=np.int64, count=len(deleted)))]
        parts.append(ids.astype(np.int64) + base)
    if not parts:
        return EMPTY
    return parts[0] if len(parts) == 1 else np.concatenate(parts)


def _segment_postings(reader, field: str, text: str) -> np.ndarray | None:
    """The segment's ids for the term, deletions included (None when it has none)."""
    segment = reader.segment() if hasattr(reader, "segment") else None
    key = (segment.segment_id(), field, text) if segment is not None else None
    if key is not None:
        found = _cache.get(key)
        if found is not None:
            return found
    try:
        matcher = reader.postings(field, text)
    except TermNotFound:
        return None
    # A segment with deletions wraps its matcher in a filter: read the leaf, deletions and all.
    leaf = getattr(matcher, "child", matcher) if reader.has_deletions() else matcher
    if hasattr(leaf, "_read_data") and hasattr(leaf, "_next_block") and not leaf._byteids:
        ids = _read_blocks(leaf).astype(np.int32)
        if key is not None and len(ids) >= CACHE_MIN_POSTINGS:
            _cache.put(key, ids)
        return ids
    return np.fromiter(matcher.all_ids(), dtype=np.int64)  # through the filter: deletions dropped already


def _read_blocks(leaf) -> np.ndarray:
    """Every id of a whoosh3 leaf matcher. A block stores its ids as deltas from 0, so the
    blocks' deltas are summed in one go and each block's running total taken off again."""
    deltas, lengths = [], []
    while leaf.is_active():
        leaf._read_data()
        block = leaf._data[0]
        deltas.extend(block)
        lengths.append(len(block))
        leaf._next_block()
    if not deltas:
        return EMPTY
    total = np.cumsum(np.array(deltas, dtype=np.int64))
    ends = np.cumsum(lengths)
    before = np.concatenate(([0], total[ends[:-1] - 1]))
    return total - np.repeat(before, lengths)


def intersect(arrays: list[np.ndarray]) -> np.ndarray:
    """Documents in every array, the smallest first so each step is cheap."""
    if not arrays:
        return EMPTY
    ordered = sorted(arrays, key=len)
    found = ordered[0]
    for other in ordered[1:]:
        if not len(found):
            break
        found = np.intersect1d(found, other, assume_unique=True)
    return found


def union(arrays: list[np.ndarray]) -> np.ndarray:
    """Documents in any array."""
    arrays = [a for a in arrays if len(a)]
    if not arrays:
        return EMPTY
    return arrays[0] if len(arrays) == 1 else np.unique(np.concatenate(arrays))
