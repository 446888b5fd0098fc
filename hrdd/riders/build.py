"""Assemble a rider as a Word document from a screening, the selected clauses and the variable values."""

from __future__ import annotations

import io
import re
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from docx import Document
from docx.enum.section import WD_ORIENT
from docx.enum.text import WD_ALIGN_PARAGRAPH
from docx.oxml.ns import qn
from docx.shared import Cm, Pt, RGBColor
from docx.text.paragraph import Paragraph as DocxParagraph

from hrdd import __version__
from hrdd.riders import ooxml
from hrdd.riders.conditions import Facts
from hrdd.riders.findings import write_findings
from hrdd.riders.library import Clause, Library
from hrdd.riders.markup import Paragraph, Token
from hrdd.riders.selection import Selection, select
from hrdd.riders.variables import clean_text, query_parameter, resolve

_SPECIAL = re.compile(r"[\t\n\r]")
_PLAIN = Token("text", "")
DOCX_MIMETYPE = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
FONT = "Arial"
BLACK = RGBColor(0, 0, 0)
TWIP_INDENT = 567  # 1 cm


def bookmark_name(ref: str) -> str:
    """The hidden (``_Ref``) bookmark a cross-reference points at; at most 40 characters."""
    return ("_Ref_" + ref.replace(":", "_").replace("-", "_"))[:40]


def needed_variables(library: Library, selection: Selection) -> set[str]:
    """Every variable the selected texts and the printed frame texts use."""
    frame = library.frame
    paths = [p for p in frame.texts if selection.technical or not p.startswith("technical.")]
    names = frame.variables_of(*paths)
    for text in selection.texts():
        names |= text.used_variables()
    return names - {"page", "pages"}


def needed_options(library: Library, screening: dict[str, Any]) -> list:
    """The option variables (``source: option``) the rider of this screening needs, in registry order."""
    needed = needed_variables(library, select(library, Facts.from_screening(screening)))
    return [spec for name, spec in library.variables.items() if spec.source == "option" and name in needed]


class RiderWriter:
    """Writes one rider into a python-docx Document."""

    def __init__(self, library: Library, selection: Selection, values: Mapping[str, str],
                 screening: dict[str, Any]):
        self.library = library
        self.frame = library.frame
        self.selection = selection
        self.values = values
        self.screening = screening
        self.document = Document()
        self.bookmarks = ooxml.Bookmarks()
        self._setup_page_and_styles()
        self._setup_lists()

    # -- set-up -------------------------------------------------------------------------------------

    def _setup_page_and_styles(self) -> None:
        section = self.document.sections[0]
        section.orientation = WD_ORIENT.PORTRAIT
        section.page_width, section.page_height = Cm(21.0), Cm(29.7)
        for side in ("left_margin", "right_margin", "top_margin", "bottom_margin"):
            setattr(section, side, Cm(2.5))
        styles = self.document.styles
        normal = styles["Normal"]
        normal.font.name = FONT
        normal.font.size = Pt(10.5)
        normal.paragraph_format.space_after = Pt(6)
        r_fonts = normal.element.get_or_add_rPr().get_or_add_rFonts()
        for attr in ("w:ascii", "w:hAnsi", "w:cs", "w:eastAsia"):
            r_fonts.set(qn(attr), FONT)
        for name, size in (("Title", 18), ("Subtitle", 12), ("Heading 1", 12), ("Heading 2", 11)):
            style = styles[name]
            style.font.name = FONT
            style.font.size = Pt(size)
            style.font.color.rgb = BLACK
            style.font.italic = False
            r_fonts = style.element.get_or_add_rPr().get_or_add_rFonts()
            for attr in ("w:asciiTheme", "w:hAnsiTheme", "w:eastAsiaTheme", "w:cstheme"):
                r_fonts.attrib.pop(qn(attr), None)
        for name in ("Title", "Subtitle"):
            styles[name].paragraph_format.alignment = WD_ALIGN_PARAGRAPH.CENTER
        styles["Heading 1"].paragraph_format.space_before = Pt(14)
        styles["Heading 1"].paragraph_format.space_after = Pt(6)
        styles["Heading 2"].paragraph_format.space_before = Pt(10)
        for name in ("List Number", "List Number 2", "List Number 3", "List Continue"):
            styles[name].paragraph_format.space_after = Pt(6)
        self.style = {name: styles[name] for name in (
            "Normal", "Title", "Subtitle", "Heading 1", "Heading 2", "List Number", "List Number 2",
            "List Number 3", "List Continue", "List Bullet", "Footer", "Table Grid")}
        self.style_ids = {name: style.style_id for name, style in self.style.items()}
        self._body = self.document._body
        self._sect_pr = self.document.element.body.find(qn("w:sectPr"))

    def _setup_lists(self) -> None:
        doc, i = self.document, TWIP_INDENT
        clauses = ooxml.add_list_definition(doc, "hrdd rider clauses", [
            ("decimal", "%1.", i, i, True), ("decimal", "%1.%2", i, i, False),
            ("lowerLetter", "(%3)", 2 * i, i, False), ("lowerRoman", "(%4)", 3 * i, i, False)])
        self.clause_list = ooxml.add_list_instance(doc, clauses)
        recitals = ooxml.add_list_definition(doc, "hrdd rider recitals", [("upperLetter", "(%1)", i, i, False)])
        self.recital_list = ooxml.add_list_instance(doc, recitals)
        parties = ooxml.add_list_definition(doc, "hrdd rider parties", [("decimal", "(%1)", i, i, False)])
        self.party_list = ooxml.add_list_instance(doc, parties)
        self.part_definition = ooxml.add_list_definition(doc, "hrdd rider schedule parts", [
            ("decimal", "%1.", i, i, False), ("lowerLetter", "(%2)", 2 * i, i, False),
            ("lowerRoman", "(%3)", 3 * i, i, False)])

    # -- inline text ---------------------------------------------------------------------------------

    def inline(self, paragraph, tokens: tuple[Token, ...]) -> None:
        """Write tokens into a paragraph: variables as plain text, references as REF fields."""
        for token in tokens:
            if token.kind == "text":
                self._run(paragraph, token.value, token)
            elif token.kind == "var":
                if token.value == "page":
                    ooxml.add_field(paragraph, "PAGE", "1", token.bold, token.italic)
                elif token.value == "pages":
                    ooxml.add_field(paragraph, "NUMPAGES", "1", token.bold, token.italic)
                else:
                    self._run(paragraph, self.values[token.value], token)
            else:
                self._reference(paragraph, token)

    @staticmethod
    def _run(paragraph, text: str, token: Token) -> None:
        if _SPECIAL.search(text):
            # Tabs and line breaks become w:tab / w:br: python-docx's run text setter handles them.
            run = paragraph.add_run(text)
            run.bold = token.bold or None
            run.italic = token.italic or None
            return
        paragraph._p.append(ooxml.text_run(text, token.bold, token.italic))

    def _reference(self, paragraph, token: Token) -> None:
        ref = token.value
        if ref == "clauses:survives":
            survivors = self.selection.survivors()
            for index, clause in enumerate(survivors):
                if index:
                    sep = " and " if index == len(survivors) - 1 else ", "
                    self._run(paragraph, sep, token)
                self._clause_ref(paragraph, clause.id, token)
        elif ref.startswith("schedule:"):
            ooxml.add_field(paragraph, f"REF {bookmark_name(ref)} \\h", str(self.selection.schedules[ref]),
                            token.bold, token.italic)
        else:
            self._clause_ref(paragraph, ref, token)

    def _clause_ref(self, paragraph, clause_id: str, token: Token) -> None:
        # \r: the paragraph number of the bookmarked heading, so the reference follows renumbering.
        ooxml.add_field(paragraph, f"REF {bookmark_name(clause_id)} \\r \\h",
                        str(self.selection.numbers[clause_id]), token.bold, token.italic)

    def para(self, style: str, tokens: tuple[Token, ...] = (), text: str | None = None,
             numbering: tuple[int, int] | None = None):
        """Add a body paragraph in a style, optionally numbered (list id, level), with tokens or text."""
        # Built directly: python-docx's style setter scans every style on each call, and its schema-ordered
        # inserts search siblings; this order (pStyle, numPr) is the schema's.
        element = ooxml.paragraph(None if style == "Normal" else self.style_ids[style], numbering)
        self._sect_pr.addprevious(element)
        paragraph = DocxParagraph(element, self._body)
        if text is not None:
            self._run(paragraph, text, _PLAIN)
        self.inline(paragraph, tokens)
        return paragraph

    # -- document parts ------------------------------------------------------------------------------

    def write(self) -> None:
        """Write the whole rider."""
        frame = self.frame
        self.para("Title", frame.texts["title"])
        self.para("Subtitle", frame.texts["subtitle"])
        self.para("Normal", frame.texts["parties.intro"])
        for key in ("parties.seller", "parties.buyer"):
            self.para("List Number", frame.texts[key], numbering=(self.party_list, 0))
        self.para("Normal", frame.texts["parties.outro"])
        self.para("Heading 1", frame.texts["recitals_heading"])
        for recital in self.selection.recitals:
            self._recital(recital)
        self.para("Normal", frame.texts["operative_intro"])
        for clause in self.selection.clauses:
            self._clause(clause)
        self._signatures()
        write_findings(self, self._schedule_heading("schedule:findings", frame.texts["findings.heading"]))
        if self.selection.technical:
            self._technical_schedule()
        self._footer()

    def _recital(self, recital: Clause) -> None:
        for index, paragraph in enumerate(recital.paragraphs):
            if index == 0:
                self.para("List Number", paragraph.tokens, numbering=(self.recital_list, 0))
            else:
                self.para("List Continue" if paragraph.level == 1 else "List Bullet", paragraph.tokens)

    def _clause(self, clause: Clause) -> None:
        heading = self.para("Heading 1", text=clause.title, numbering=(self.clause_list, 0))
        self.bookmarks.wrap_paragraph(heading, bookmark_name(clause.id))
        self._numbered(clause.paragraphs, self.clause_list, base_level=1)

    def _numbered(self, paragraphs: tuple[Paragraph, ...], num_id: int, base_level: int) -> None:
        styles = {1: "List Number", 2: "List Number 2", 3: "List Number 3"}
        for paragraph in paragraphs:
            for tokens in self._item_per_line(paragraph):
                self.para(styles[paragraph.level], tokens, numbering=(num_id, base_level + paragraph.level - 1))

    def _item_per_line(self, paragraph: Paragraph) -> list[tuple[Token, ...]]:
        """An item whose variable holds several lines (a reviewer's conditions): one item (a), (b)… per line."""
        if paragraph.level == 1:
            return [paragraph.tokens]
        for index, token in enumerate(paragraph.tokens):
            lines = _lines(self.values.get(token.value, "")) if token.kind == "var" else []
            if len(lines) > 1:
                return [(*paragraph.tokens[:index], replace(token, kind="text", value=line),
                         *paragraph.tokens[index + 1:]) for line in lines]
        return [paragraph.tokens]

    def _schedule_heading(self, ref: str, title: tuple[Token, ...]):
        heading = self.para("Heading 1", text=f"{self.frame.labels['schedule_label']} ")
        heading.paragraph_format.page_break_before = True
        # SEQ numbers the schedules itself; the bookmark around it is what [[schedule:…]] shows.
        runs = ooxml.add_field(heading, "SEQ Schedule \\* ARABIC", str(self.selection.schedules[ref]))
        self.bookmarks.wrap_runs(heading, bookmark_name(ref), runs)
        heading.add_run(" — ")
        self.inline(heading, title)
        return heading

    def _technical_schedule(self) -> None:
        frame = self.frame
        self._schedule_heading("schedule:technical", frame.texts["technical.heading"])
        self.para("Normal", frame.texts["technical.intro"])
        items = (self.screening.get("transaction") or {}).get("items") or ()
        for index, part in enumerate(self.selection.technical):
            letter = chr(ord("A") + index) if index < 26 else str(index + 1)
            self.para("Heading 2", text=f"{frame.labels['technical.part_label']} {letter} — {part.title}")
            # A Part a reviewer required for a capability no item lists applies to every Product.
            carriers = [i for i in items if part.capability in (i.get("capabilities") or ())] or items
            products = [f"{i.get('name') or i.get('sku')} ({i.get('sku')})" for i in carriers]
            applies = self.para("Normal")
            applies.add_run(f"{frame.labels['technical.applies_to_label']}: ").italic = True
            applies.add_run(clean_text("; ".join(products)))
            num_id = ooxml.add_list_instance(self.document, self.part_definition)
            self._numbered(part.paragraphs, num_id, base_level=0)

    def _signatures(self) -> None:
        frame = self.frame
        self.para("Heading 1", frame.texts["signature.heading"])
        self.para("Normal", frame.texts["signature.intro"]).paragraph_format.keep_with_next = True
        lines = frame.signature_lines
        rows = [[[], []]] + [[[[(f"{label}: ", False), ("_" * 24, False)]]] * 2 for label in lines]
        table = ooxml.table(rows, (4536, 4536), space_before_twips=280, keep_with_next=True, centered=True)
        self.add_block(table)
        for cell, key in zip(table.iter(qn("w:tc")), ("signature.seller", "signature.buyer"), strict=False):
            self.inline(DocxParagraph(cell.find(qn("w:p")), self._body), frame.texts[key])

    def add_block(self, element) -> None:
        """Append a table (or other block) to the body, before the section properties."""
        self._sect_pr.addprevious(element)

    def _footer(self) -> None:
        footer = self.document.sections[0].footer
        paragraph = footer.paragraphs[0]
        paragraph.style = self.style["Footer"]
        paragraph.alignment = WD_ALIGN_PARAGRAPH.CENTER
        self.inline(paragraph, self.frame.texts["footer"])
        for run in paragraph.runs:
            run.font.size = Pt(8)

    def set_properties(self) -> None:
        """Core properties (title, subject, keywords…) and the custom properties that trace the text."""
        screening, values, selection = self.screening, self.values, self.selection
        props = self.document.core_properties
        title = _plain(self.frame.texts["title"], values)
        agreement = values.get("agreement_reference", "")
        props.title = f"{title} — {agreement}" if agreement else title
        props.subject = (f"Human rights and end-use terms for {values.get('end_user_name', '')}, "
                         f"screening {screening.get('id') or ''}")[:255]
        # The file goes to the Buyer: its properties name the rider and what made it, never the Seller's
        # internal decision or red flags (Schedule 1 states the findings in contract language).
        props.keywords = "human rights due diligence; UN Guiding Principles; State Department Guidance 2020"
        props.category = "Contract rider"
        props.author = values.get("seller_name", "hrdd")
        props.last_modified_by = "hrdd"
        props.identifier = screening.get("id") or ""
        props.version = self.frame.version
        props.comments = (f"Built by hrdd from clause library frame {self.frame.version}; the custom "
                          "properties list every clause id and version.")
        now = datetime.now(UTC).replace(microsecond=0)
        props.created = props.modified = now.replace(tzinfo=None)
        props.revision = 1
        ooxml.set_app_properties(self.document, f"hrdd {__version__}")
        ooxml.set_custom_properties(self.document, {
            "HRDD Screening": screening.get("id") or "",
            "HRDD Clauses": "; ".join(selection.manifest()),
            "HRDD Frame Version": self.frame.version,
            "HRDD Clause Digest": "sha256:" + selection.digest(self.library),
        })


# "1. ", "(b) ", "- " or "• " typed at the start of a line: the rider numbers the items itself.
_TYPED_MARKER = re.compile(r"^(?:[-*\u2022]|\(?(?:[0-9]{1,2}|[a-z]|[ivx]{1,4})[.)])\s+")


def _lines(value: str) -> list[str]:
    lines = (_TYPED_MARKER.sub("", line.strip()) for line in value.splitlines())
    return [" ".join(line.split()) for line in lines if line.strip()]


def _plain(tokens: tuple[Token, ...], values: Mapping[str, str]) -> str:
    return "".join(values.get(t.value, "") if t.kind == "var" else t.value for t in tokens if t.kind != "ref")


def build_document(screening: dict[str, Any], options: Mapping[str, Any], library: Library,
                   config: Mapping[str, Any] | None = None, how_to_give: Callable[[str], str] = query_parameter):
    """Select, resolve variables and write the rider; return the python-docx Document and the selection.

    Raises ``VariableError`` for missing or bad options (worded by ``how_to_give``, see ``resolve``) and
    ``SelectionError`` for a library whose texts do not fit this screening.
    """
    selection = select(library, Facts.from_screening(screening))
    values = resolve(library.variables, needed_variables(library, selection), screening, options, config,
                     how_to_give)
    writer = RiderWriter(library, selection, values, screening)
    writer.write()
    writer.set_properties()
    return writer.document, selection


def build_rider(screening: dict[str, Any], options: Mapping[str, Any], library: Library,
                config: Mapping[str, Any] | None = None, how_to_give: Callable[[str], str] = query_parameter) -> bytes:
    """The rider as .docx bytes."""
    document, _ = build_document(screening, options, library, config, how_to_give)
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()
