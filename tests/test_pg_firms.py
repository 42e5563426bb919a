"""Firm names in memory (search/pg_firms.py): a term's matches are kept per snapshot of the
names, so a rename is seen by the next snapshot and never hidden by what was kept."""
from feereg.search import analysis, pg_firms
from feereg.search.query import parse


def _names(rows):
    return pg_firms.FirmNames.build([(firm_id, analysis.normalise(name)) for firm_id, name in rows])


def test_a_term_matched_again_is_the_kept_answer_and_a_rename_makes_a_new_one():
    names = _names([(1, "深圳南山物流有限公司"), (2, "深圳宝安货运代理"), (3, "盐田南山码头")])
    term = parse("深圳南山").terms[0]
    first = names.match(term)
    assert first.tolist() == [1]
    assert names.match(term) is first  # kept
    assert not first.flags.writeable  # shared by every search that asks: nobody may change it

    renamed = names.changed([(2, analysis.normalise("深圳南山货运代理"))])
    assert sorted(renamed.match(term).tolist()) == [1, 2]
    assert names.match(term).tolist() == [1]  # the old snapshot answers as it did


def test_the_kept_matches_are_bounded(monkeypatch):
    monkeypatch.setattr(pg_firms, "MATCHES_KEPT", 3 + pg_firms.ENTRY_COST)
    names = _names([(n, f"深圳物流{n}") for n in range(1, 4)])
    broad = parse("深圳").terms[0]
    assert len(names.match(broad)) == 3
    assert len(names.match(parse("物流").terms[0])) == 3  # over the bound: the kept ones are dropped
    assert list(names._matched) == [parse("物流").terms[0].pieces]


def test_terms_matching_no_firm_count_against_the_bound_too(monkeypatch):
    monkeypatch.setattr(pg_firms, "MATCHES_KEPT", 10 * pg_firms.ENTRY_COST)
    names = _names([(1, "深圳物流")])
    for n in range(1000):  # words no firm holds, as anyone may type them
        assert len(names.match(parse(f"nothing{n}").terms[0])) == 0
    assert len(names._matched) <= 10
