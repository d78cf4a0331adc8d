"""Wikipedia as DPR reads it: any MediaWiki ``pages-articles`` XML dump, streamed, markup
stripped, every article cut into disjoint 100-word passages that carry the article's title
(Karpukhin et al. 2020, §4.1: "split each article into multiple, disjoint text blocks of 100
words as passages").

Reading a dump:
- the XML is streamed (``xml.etree.ElementTree.iterparse``, ``.bz2`` decompressed on the fly),
  so a 20 GB dump needs no more memory than one page;
- only articles: namespace 0, no redirects, no disambiguation pages;
- markup is stripped with ``mwparserfromhell`` (a maintained wikitext parser): templates
  (infoboxes), tables, ``<ref>`` citations, files, images and category links go; link text
  stays. DPR's corpus likewise drops "semi-structured data such as tables, info-boxes, lists";
  here list lines go too, and so does any line of fewer than ``MIN_LINE_WORDS`` words
  (captions, headings); an article ends at its first back-matter section (See also, ...).

The copy here (DATA.md) is a real English Wikipedia shard: the first 106 articles of
``enwiki-…-pages-articles1.xml``, about 5,200 passages. Passages are cached as JSON in the
cache directory, keyed by the dump's size and modification time.
"""

from __future__ import annotations

import bz2
import contextlib
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from sutskever30.core.errors import DataCorruptError, DataMissingError
from sutskever30.data.cache import cached_json
from sutskever30.data.registry import Dataset, register

DUMPS_URL = "https://dumps.wikimedia.org/enwiki/latest/"
FIRST_SHARD = "enwiki-latest-pages-articles1.xml-p1p41242.bz2"  # ~270 MB of ~20 GB
PASSAGE_WORDS = 100
EXTRACTION_VERSION = 4  # part of the cache key: bump it when plain_text changes
MIN_LINE_WORDS = 8
BACK_MATTER = {
    "see also", "references", "external links", "further reading", "notes", "bibliography",
    "sources", "citations", "footnotes", "notes and references", "works cited",
}  # fmt: skip
DROPPED_TAGS = {"ref", "table", "gallery", "math", "chem", "timeline", "imagemap", "score"}
DROPPED_LINK_NAMESPACES = ("file:", "image:", "category:", "media:")
LIST_MARKS = ("*", "#", ";", ":")
# What the parser leaves where the wikitext is malformed (an unclosed table or template
# swallows what follows it): citations are cut out, a line with other markup is dropped.
_LEFTOVER_TAG = re.compile(r"<ref[^>]*/>|<ref[^>]*>.*?</ref>|<[^>]+>")
_LEFTOVER_MARKUP = re.compile(r"\[\[|\]\]|\{\{|\}\}|\||bgcolor|colspan")


@dataclass(frozen=True)
class Passage:
    """One 100-word block of an article; ``pid`` is its index in the corpus."""

    pid: int
    title: str
    text: str


def _locate(root: Path) -> Path | None:
    folder = root / "wikipedia"
    dumps = sorted(folder.glob("*pages-articles*.xml*")) if folder.is_dir() else []
    return dumps[0] if dumps else None


def _open(path: Path):
    return bz2.open(path, "rb") if path.suffix == ".bz2" else path.open("rb")


def read_articles(path: Path) -> Iterator[tuple[str, str]]:
    """(title, wikitext) of every article page of a dump, in dump order, streamed."""
    try:
        with _open(path) as fh:
            for _, element in ET.iterparse(fh, events=("end",)):
                if element.tag.rsplit("}", 1)[-1] != "page":
                    continue
                ns = element.findtext("{*}ns")
                title = element.findtext("{*}title") or ""
                text = element.findtext("{*}revision/{*}text") or ""
                redirect = element.find("{*}redirect") is not None
                element.clear()
                if ns == "0" and not redirect and not _is_disambiguation(title, text):
                    yield title, text
    except (OSError, EOFError, ET.ParseError) as err:
        raise DataCorruptError(f"cannot read the Wikipedia dump {path}: {err}") from None


def _is_disambiguation(title: str, wikitext: str) -> bool:
    return "(disambiguation)" in title or bool(
        re.search(r"\{\{\s*(disambig|disambiguation|dab|hndis|geodis)\b", wikitext, re.I)
    )


def plain_text(wikitext: str) -> str:
    """The article's running text: markup stripped; templates, lists, back matter, tables,
    citations, files, categories and short lines dropped; paragraphs kept as lines."""
    import mwparserfromhell

    code = mwparserfromhell.parse(wikitext)
    for template in code.filter_templates(recursive=False):
        _remove(code, template)
    for tag in code.filter_tags(matches=lambda t: str(t.tag).lower() in DROPPED_TAGS):
        _remove(code, tag)
    for link in code.filter_wikilinks():
        if str(link.title).strip().lower().startswith(DROPPED_LINK_NAMESPACES):
            _remove(code, link)
    lines = str(code).splitlines()
    code = mwparserfromhell.parse("\n".join(ln for ln in lines if not ln.startswith(LIST_MARKS)))
    for heading in code.filter_headings(recursive=False):
        if heading.title.strip_code().strip().lower() in BACK_MATTER:
            code = mwparserfromhell.parse(str(code)[: str(code).index(str(heading))])
            break
    for heading in code.filter_headings():
        _remove(code, heading)
    text = code.strip_code(normalize=True, collapse=True)
    text = _LEFTOVER_TAG.sub(" ", text)
    lines = (re.sub(r"\s+", " ", line).strip() for line in text.splitlines())
    return "\n".join(
        line
        for line in lines
        if len(line.split()) >= MIN_LINE_WORDS and not _LEFTOVER_MARKUP.search(line)
    )


def _remove(code, node) -> None:
    """Remove ``node`` if it is still in ``code`` (a parent may have gone already)."""
    with contextlib.suppress(ValueError):
        code.remove(node)


def split_passages(text: str, words: int = PASSAGE_WORDS) -> list[str]:
    """Disjoint blocks of ``words`` words (the last one shorter), as DPR splits articles."""
    tokens = text.split()
    return [" ".join(tokens[i : i + words]) for i in range(0, len(tokens), words)]


def build_passages(path: Path, *, max_articles: int | None = None) -> list[Passage]:
    """Every passage of the dump at ``path`` (the first ``max_articles`` articles)."""
    passages: list[Passage] = []
    for n, (title, wikitext) in enumerate(read_articles(path)):
        if max_articles is not None and n >= max_articles:
            break
        for block in split_passages(plain_text(wikitext)):
            passages.append(Passage(len(passages), title, block))
    if not passages:
        raise DataCorruptError(f"{path}: no article text found (is it a pages-articles dump?)")
    return passages


def load_passages(path: Path | None = None) -> list[Passage]:
    """The passages of the dump at ``path`` (default: the one in ``<data>/wikipedia/``),
    built once and then read from the cache."""
    path = Path(path) if path is not None else WIKIPEDIA.require()
    if not path.is_file():
        raise DataMissingError(f"no Wikipedia dump at {path}; {WIKIPEDIA.how}")
    rows = cached_json(
        f"wikipedia-passages-{path.name}",
        lambda: [asdict(p) for p in build_passages(path)],
        sources=[path],
        salt=f"extraction v{EXTRACTION_VERSION}",
    )
    return [Passage(**row) for row in rows]


def check(path: Path) -> None:
    """The dump is readable XML with at least one article."""
    for _ in read_articles(path):
        return
    raise DataCorruptError(f"{path}: no article pages")


WIKIPEDIA = register(
    Dataset(
        name="wikipedia",
        description="a MediaWiki pages-articles dump (English Wikipedia), 100-word passages",
        url=DUMPS_URL + FIRST_SHARD,
        filename=f"wikipedia/{FIRST_SHARD}",
        md5=None,  # dumps are rewritten monthly: no fixed checksum
        locate=_locate,
        hint=(
            f"run `s30 data fetch wikipedia` (the first shard, {DUMPS_URL}{FIRST_SHARD}) "
            "or put any pages-articles .xml.bz2 dump in <data>/wikipedia/"
        ),
        check=check,
    )
)
