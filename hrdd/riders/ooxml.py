"""WordprocessingML that python-docx has no API for: numbering, bookmarks, fields, custom properties."""

from __future__ import annotations

import hashlib
from xml.sax.saxutils import escape

from docx.opc.constants import RELATIONSHIP_TYPE as RT
from docx.opc.packuri import PackURI
from docx.opc.part import Part
from docx.oxml import OxmlElement, parse_xml
from docx.oxml.ns import nsdecls, qn

CUSTOM_PROPERTIES_CT = "application/vnd.openxmlformats-officedocument.custom-properties+xml"
APP_PROPERTIES_CT = "application/vnd.openxmlformats-officedocument.extended-properties+xml"
CUSTOM_PROPERTIES_FMTID = "{D5CDD505-2E9C-101B-9397-08002B2CF9AE}"
# Word shows at most 255 characters of a text property, so long values are split over several.
PROPERTY_CHUNK = 255


def _level(ilvl: int, fmt: str, text: str, left: int, hanging: int, bold: bool = False) -> str:
    rpr = "<w:rPr><w:b/></w:rPr>" if bold else ""
    return (f'<w:lvl w:ilvl="{ilvl}"><w:start w:val="1"/><w:numFmt w:val="{fmt}"/>'
            f'<w:lvlText w:val="{text}"/><w:lvlJc w:val="left"/>'
            f'<w:pPr><w:ind w:left="{left}" w:hanging="{hanging}"/></w:pPr>{rpr}</w:lvl>')


def add_list_definition(document, name: str, levels: list[tuple[str, str, int, int, bool]]) -> int:
    """Add an abstract list definition; ``levels`` holds (numFmt, lvlText, left, hanging, bold) per level.

    Returns the abstractNumId. Definitions are inserted before the first ``w:num`` as the schema requires.
    """
    numbering = document.part.numbering_part.element
    ids = [int(a.get(qn("w:abstractNumId"))) for a in numbering.findall(qn("w:abstractNum"))]
    abstract_id = max(ids, default=-1) + 1
    nsid = hashlib.sha1(name.encode()).hexdigest()[:8].upper()
    kind = "multilevel" if len(levels) > 1 else "singleLevel"
    body = "".join(_level(i, *lvl) for i, lvl in enumerate(levels))
    element = parse_xml(
        f'<w:abstractNum {nsdecls("w")} w:abstractNumId="{abstract_id}"><w:nsid w:val="{nsid}"/>'
        f'<w:multiLevelType w:val="{kind}"/><w:name w:val="{escape(name)}"/>{body}</w:abstractNum>')
    first_num = numbering.find(qn("w:num"))
    if first_num is not None:
        first_num.addprevious(element)
    else:
        numbering.append(element)
    return abstract_id


def add_list_instance(document, abstract_id: int, restart: bool = True) -> int:
    """Add a list (``w:num``) using a definition; ``restart`` starts its first level again at 1."""
    numbering = document.part.numbering_part.element
    num = numbering.add_num(abstract_id)
    if restart:
        override = parse_xml(f'<w:lvlOverride {nsdecls("w")} w:ilvl="0"><w:startOverride w:val="1"/>'
                             f'</w:lvlOverride>')
        num.append(override)
    return int(num.numId)


def _val(tag: str, value) -> object:
    element = OxmlElement(tag)
    element.set(qn("w:val"), str(value))
    return element


def paragraph(style_id: str | None, numbering: tuple[int, int] | None = None):
    """A new ``w:p`` with a style and optional list numbering (list id, level), not yet in the document."""
    p = OxmlElement("w:p")
    if style_id or numbering:
        p_pr = OxmlElement("w:pPr")
        if style_id:
            p_pr.append(_val("w:pStyle", style_id))
        if numbering:
            num_pr = OxmlElement("w:numPr")
            num_pr.append(_val("w:ilvl", numbering[1]))
            num_pr.append(_val("w:numId", numbering[0]))
            p_pr.append(num_pr)
        p.append(p_pr)
    return p


def text_run(text: str, bold: bool = False, italic: bool = False):
    """A ``w:r`` holding plain text (no tabs or line breaks), optionally bold or italic."""
    t = OxmlElement("w:t")
    t.text = text
    if text[:1].isspace() or text[-1:].isspace():
        t.set(qn("xml:space"), "preserve")
    return _run(t, bold, italic)


def set_numbering(paragraph, num_id: int, ilvl: int) -> None:
    """Number a paragraph with list ``num_id`` at level ``ilvl``."""
    num_pr = paragraph._p.get_or_add_pPr().get_or_add_numPr()
    num_pr.get_or_add_ilvl().val = ilvl
    num_pr.get_or_add_numId().val = num_id


class Bookmarks:
    """Hands out unique bookmark ids within one document."""

    def __init__(self) -> None:
        self.next_id = 1

    def wrap_paragraph(self, paragraph, name: str) -> None:
        """Bookmark a whole paragraph (its list number is what a ``REF \\r`` field shows)."""
        start, end = self._pair(name)
        p = paragraph._p
        p_pr = p.pPr
        if p_pr is not None:
            p_pr.addnext(start)
        else:
            p.insert(0, start)
        p.append(end)

    def wrap_runs(self, paragraph, name: str, runs: list) -> None:
        """Bookmark a sequence of runs already in the paragraph."""
        start, end = self._pair(name)
        runs[0].addprevious(start)
        runs[-1].addnext(end)

    def _pair(self, name: str):
        start = OxmlElement("w:bookmarkStart")
        start.set(qn("w:id"), str(self.next_id))
        start.set(qn("w:name"), name)
        end = OxmlElement("w:bookmarkEnd")
        end.set(qn("w:id"), str(self.next_id))
        self.next_id += 1
        return start, end


def _run(child, bold: bool = False, italic: bool = False):
    run = OxmlElement("w:r")
    if bold or italic:
        r_pr = OxmlElement("w:rPr")
        if bold:
            r_pr.append(OxmlElement("w:b"))
        if italic:
            r_pr.append(OxmlElement("w:i"))
        run.append(r_pr)
    run.append(child)
    return run


def add_field(paragraph, instruction: str, cached: str, bold: bool = False, italic: bool = False) -> list:
    """Append a complex field (e.g. ``REF _Ref1 \\r \\h``, ``PAGE``) showing ``cached`` until updated."""
    begin = OxmlElement("w:fldChar")
    begin.set(qn("w:fldCharType"), "begin")
    instr = OxmlElement("w:instrText")
    instr.set(qn("xml:space"), "preserve")
    instr.text = f" {instruction} "
    separate = OxmlElement("w:fldChar")
    separate.set(qn("w:fldCharType"), "separate")
    text = OxmlElement("w:t")
    text.text = cached
    end = OxmlElement("w:fldChar")
    end.set(qn("w:fldCharType"), "end")
    runs = [_run(begin), _run(instr), _run(separate), _run(text, bold, italic), _run(end)]
    for run in runs:
        paragraph._p.append(run)
    return runs


def set_custom_properties(document, properties: dict[str, str]) -> None:
    """Write ``docProps/custom.xml`` with text properties (values over 255 characters are split)."""
    items = []
    for name, value in properties.items():
        chunks = [value[i:i + PROPERTY_CHUNK] for i in range(0, len(value), PROPERTY_CHUNK)] or [""]
        for index, chunk in enumerate(chunks):
            items.append((name if index == 0 else f"{name} ({index + 1})", chunk))
    body = "".join(
        f'<property fmtid="{CUSTOM_PROPERTIES_FMTID}" pid="{pid}" name="{escape(name, {chr(34): "&quot;"})}">'
        f"<vt:lpwstr>{escape(value)}</vt:lpwstr></property>"
        for pid, (name, value) in enumerate(items, start=2))
    xml = ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
           '<Properties xmlns="http://schemas.openxmlformats.org/officeDocument/2006/custom-properties" '
           'xmlns:vt="http://schemas.openxmlformats.org/officeDocument/2006/docPropsVTypes">'
           f"{body}</Properties>").encode()
    package = document.part.package
    part = Part(PackURI("/docProps/custom.xml"), CUSTOM_PROPERTIES_CT, xml, package)
    package.relate_to(part, RT.CUSTOM_PROPERTIES)


def set_app_properties(document, application: str) -> None:
    """Replace python-docx's template ``docProps/app.xml`` (Word for Mac, 1 page, 0 words) with the generator.

    Page and word counts are left out: Word and LibreOffice work them out when they open the file.
    """
    xml = ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
           '<Properties xmlns="http://schemas.openxmlformats.org/officeDocument/2006/extended-properties" '
           'xmlns:vt="http://schemas.openxmlformats.org/officeDocument/2006/docPropsVTypes">'
           f"<Application>{escape(application)}</Application><DocSecurity>0</DocSecurity>"
           "</Properties>").encode()
    package = document.part.package
    for part in package.iter_parts():
        if part.partname == "/docProps/app.xml":
            part._blob = xml
            return
    package.relate_to(Part(PackURI("/docProps/app.xml"), APP_PROPERTIES_CT, xml, package), RT.EXTENDED_PROPERTIES)


def read_custom_properties(document) -> dict[str, str]:
    """The custom text properties of a document, with split values joined again."""
    try:
        part = document.part.package.part_related_by(RT.CUSTOM_PROPERTIES)
    except KeyError:
        return {}
    root = parse_xml(part.blob)
    ns = "{http://schemas.openxmlformats.org/officeDocument/2006/custom-properties}"
    values: dict[str, str] = {}
    for prop in root.iter(f"{ns}property"):
        name = prop.get("name")
        text = "".join(prop.itertext())
        base = name.rsplit(" (", 1)[0] if name.endswith(")") and " (" in name else name
        if base != name and base in values:
            values[base] += text
        else:
            values[name] = text
    return values


def set_column_widths(table, widths) -> None:
    """Fix column widths (Word and LibreOffice read the cell widths, not the grid alone)."""
    table.autofit = False
    for column, width in zip(table.columns, widths, strict=True):
        column.width = width
    for row in table.rows:
        for cell, width in zip(row.cells, widths, strict=True):
            cell.width = width


def _run_xml(text: str, bold: bool, size_half_points: int | None) -> str:
    props = ("<w:b/>" if bold else "") + (f'<w:sz w:val="{size_half_points}"/>' if size_half_points else "")
    r_pr = f"<w:rPr>{props}</w:rPr>" if props else ""
    pieces = text.split("\n")
    body = "<w:br/>".join(f'<w:t xml:space="preserve">{escape(piece)}</w:t>' for piece in pieces)
    return f"<w:r>{r_pr}{body}</w:r>"


def table(rows, widths_twips, style_id: str | None = None, header: bool = False,
          size_half_points: int | None = None, space_after_twips: int | None = None,
          space_before_twips: int | None = None, keep_with_next: bool = False, centered: bool = False):
    """A ``w:tbl`` from rows of cells; a cell is a list of paragraphs, a paragraph a list of (text, bold).

    Built as one XML string and parsed once: python-docx's row and cell API re-parses and searches for
    every row and cell. Text is escaped here; it is never interpreted.
    """
    grid = "".join(f'<w:gridCol w:w="{w}"/>' for w in widths_twips)
    style = f'<w:tblStyle w:val="{escape(style_id)}"/>' if style_id else ""
    jc = '<w:jc w:val="center"/>' if centered else ""
    spacing = ""
    if space_after_twips is not None or space_before_twips is not None:
        attrs = "".join(f' w:{k}="{v}"' for k, v in (("before", space_before_twips), ("after", space_after_twips))
                        if v is not None)
        spacing = f"<w:spacing{attrs}/>"
    out = [f'<w:tbl {nsdecls("w")}><w:tblPr>{style}<w:tblW w:w="0" w:type="auto"/>{jc}'
           f'<w:tblLayout w:type="fixed"/><w:tblLook w:val="04A0"/></w:tblPr><w:tblGrid>{grid}</w:tblGrid>']
    for index, row in enumerate(rows):
        tr_pr = '<w:trPr><w:cantSplit/><w:tblHeader/></w:trPr>' if header and index == 0 else "<w:trPr><w:cantSplit/></w:trPr>"
        out.append(f"<w:tr>{tr_pr}")
        for cell, width in zip(row, widths_twips, strict=True):
            out.append(f'<w:tc><w:tcPr><w:tcW w:w="{width}" w:type="dxa"/></w:tcPr>')
            for paragraph in cell or [[]]:
                # Keep every row with the next, except the last: the table stays on one page.
                keep = "<w:keepNext/>" if keep_with_next and index < len(rows) - 1 else ""
                p_pr = f"<w:pPr>{keep}{spacing}</w:pPr>" if keep or spacing else ""
                runs = "".join(_run_xml(text, bold, size_half_points) for text, bold in paragraph if text)
                out.append(f"<w:p>{p_pr}{runs}</w:p>")
            out.append("</w:tc>")
        out.append("</w:tr>")
    out.append("</w:tbl>")
    return parse_xml("".join(out))
