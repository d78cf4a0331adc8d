"""The Wikipedia dump reader and the question sets built from its passages."""

import bz2
import re

import pytest

from sutskever30.core.errors import DataCorruptError, DataMissingError
from sutskever30.data import wiki_questions as wq
from sutskever30.data import wikipedia as wiki
from tests.conftest import has_dataset

BODY = " ".join(f"word{i}" for i in range(230))  # 230 words: passages of 100, 100, 30

ARTICLE = f"""{{{{Infobox country
| name = Secretland
| capital = Hiddenville
}}}}
'''Testland''' is a [[country]] in [[Europe|western Europe]] founded in 1848.<ref>{{{{cite
book |title=Refbook}}}} A citation sentence that must not survive here.</ref>
[[File:Flag.svg|thumb|A caption about the flag of this country that goes]]

== History ==
{BODY}
{{| class="wikitable"
| tablecell one two three four five six seven eight nine
|}}
* a list item that is short
* another list item with some more words in it ok

== See also ==
This back matter paragraph should be dropped because it is after See also.
[[Category:Countries]]
"""


def page(title: str, text: str, ns: int = 0, redirect: bool = False) -> str:
    red = f'<redirect title="{title}x" />' if redirect else ""
    return (
        f"<page><title>{title}</title><ns>{ns}</ns><id>1</id>{red}"
        f"<revision><id>2</id><text>{text.replace('&', '&amp;').replace('<', '&lt;')}</text>"
        f"</revision></page>"
    )


def write_dump(path, pages: list[str]) -> None:
    xml = (
        '<mediawiki xmlns="http://www.mediawiki.org/xml/export-0.10/">'
        + "".join(pages)
        + "</mediawiki>"
    )
    path.write_bytes(bz2.compress(xml.encode()))


@pytest.fixture
def dump(tmp_path, monkeypatch):
    monkeypatch.setenv("S30_CACHE_DIR", str(tmp_path / "cache"))
    path = tmp_path / "enwiki-test-pages-articles.xml.bz2"
    write_dump(
        path,
        [
            page("Testland", ARTICLE),
            page("Talk:Testland", "talk page words " * 20, ns=1),
            page("Old Testland", "#REDIRECT [[Testland]]", redirect=True),
            page("Mercury (disambiguation)", "Mercury may refer to many things " * 5),
            page("Jupiter", "{{disambiguation}} Jupiter may refer to planets and gods " * 3),
        ],
    )
    return path


def test_only_articles_are_read(dump):
    assert [title for title, _ in wiki.read_articles(dump)] == ["Testland"]


def test_markup_tables_citations_lists_and_back_matter_are_stripped(dump):
    ((_, wikitext),) = wiki.read_articles(dump)
    text = wiki.plain_text(wikitext)
    assert text.startswith("Testland is a country in western Europe founded in 1848.")
    for gone in ("Hiddenville", "Refbook", "citation sentence", "caption", "tablecell",
                 "list item", "back matter", "Category", "History", "[[", "'''"):  # fmt: skip
        assert gone not in text, gone
    assert BODY in text


def test_passages_are_disjoint_100_word_blocks_with_titles(dump):
    passages = wiki.load_passages(dump)
    words = wiki.plain_text(next(wiki.read_articles(dump))[1]).split()
    assert [len(p.text.split()) for p in passages] == [100, 100, len(words) - 200]
    assert " ".join(p.text for p in passages).split() == words
    assert [p.pid for p in passages] == [0, 1, 2]
    assert {p.title for p in passages} == {"Testland"}


def test_passages_are_cached_and_follow_the_dump(dump, monkeypatch):
    first = wiki.load_passages(dump)
    monkeypatch.setattr(wiki, "build_passages", lambda *a, **k: pytest.fail("not cached"))
    assert wiki.load_passages(dump) == first
    monkeypatch.undo()
    monkeypatch.setenv("S30_CACHE_DIR", str(dump.parent / "cache"))
    write_dump(dump, [page("Other", "Other is a word list of many words here " * 30)])
    assert {p.title for p in wiki.load_passages(dump)} == {"Other"}


def test_missing_and_corrupt_dumps_are_clear(tmp_path, monkeypatch):
    monkeypatch.setenv("S30_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("S30_CACHE_DIR", str(tmp_path / "cache"))
    with pytest.raises(DataMissingError, match=r"wikipedia.*pages-articles"):
        wiki.load_passages()
    bad = tmp_path / "x-pages-articles.xml.bz2"
    bad.write_bytes(b"not bz2 at all")
    with pytest.raises(DataCorruptError, match="cannot read the Wikipedia dump"):
        wiki.load_passages(bad)


def test_splits_are_fixed_by_title_and_disjoint():
    titles = [f"Article {i}" for i in range(2000)]
    splits = [wq.split_of(t) for t in titles]
    assert splits == [wq.split_of(t) for t in reversed(titles)][::-1]
    share = {s: splits.count(s) / len(splits) for s in ("train", "val", "test")}
    assert share["test"] == pytest.approx(0.2, abs=0.03)
    assert share["val"] == pytest.approx(0.1, abs=0.03)
    passages = [wiki.Passage(i, t, "x") for i, t in enumerate(titles)]
    held = {p.title for p in wq.passages_of(passages, "test")}
    assert held.isdisjoint(p.title for p in wq.passages_of(passages, "train"))


TEXT = (
    "ending of an earlier sentence. The treaty was signed in 1815 by the two kings. "
    "A second whole sentence with no year at all here. Short one. "
    "The bridge opened in 1932 and closed in 1977 after the flood. Then the last sentence is cut"
)


def test_sentences_keep_only_whole_ones():
    assert wq.sentences(TEXT) == [
        "The treaty was signed in 1815 by the two kings.",
        "A second whole sentence with no year at all here.",
        "The bridge opened in 1932 and closed in 1977 after the flood.",
    ]


def test_inverse_cloze_removes_the_sentence_most_of_the_time():
    passages = [wiki.Passage(i, "T", TEXT) for i in range(400)]
    queries = wq.ict_queries(passages, seed=0)
    assert all(q.text in wq.sentences(TEXT) for q in queries)
    removed = sum(q.text not in q.context for q in queries) / len(queries)
    assert removed == pytest.approx(0.9, abs=0.05)
    assert [q.pid for q in queries] == list(range(400))


def test_cloze_questions_mask_the_only_year_of_a_sentence():
    queries = wq.cloze_queries([wiki.Passage(7, "Treaty", TEXT)], seed=0)
    assert queries == [
        wq.Query("Treaty: The treaty was signed in ____ by the two kings.", 7, answer="1815")
    ]


@pytest.mark.skipif(not has_dataset("wikipedia"), reason="no Wikipedia dump")
def test_real_shard_passages_and_held_out_questions():
    passages = wiki.load_passages()
    assert len({p.title for p in passages}) == 97 and len(passages) == 4009
    assert all(len(p.text.split()) <= 100 for p in passages)
    assert not any(re.search(r"\{\{|\}\}|\[\[|<ref|</|thumb\|", p.text) for p in passages)
    test = wq.cloze_queries(wq.passages_of(passages, "test"), seed=0)
    train_titles = {p.title for p in wq.passages_of(passages, "train")}
    assert len(test) > 200
    assert all(passages[q.pid].title not in train_titles for q in test)
    assert all(q.answer in passages[q.pid].text and q.answer not in q.text for q in test)


@pytest.mark.parametrize(
    ("reply", "question"),
    [
        (
            "What is the answer to this question: Who wrote the Iliad poem?",
            "Who wrote the Iliad poem?",
        ),
        ("When did the war end in Europe?\nIt ended in 1945.", "When did the war end in Europe?"),
        ("What is the answer to this question?", None),  # no question left
        ("The passage is about a war in Europe.", None),
        ("Why?", None),
    ],
)
def test_generated_replies_are_cleaned_to_one_question(reply, question):
    assert wq.clean_question(reply) == question
