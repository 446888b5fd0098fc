"""The first checks of an uploaded checklist: size, file type, macros and zip bombs, before any XML is parsed."""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass

from hrdd.errors import ApiError

XLSX_MIMETYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
_ZIP_MAGIC = b"PK\x03\x04"
_OLE2_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # .xls, and also password-encrypted .xlsx
# An .xlsx saved with a password is an OLE2 file holding this stream (directory names are UTF-16).
_ENCRYPTED_STREAM = "EncryptedPackage".encode("utf-16-le")
_ODS_MIMETYPE = b"mimetypeapplication/vnd.oasis.opendocument"
_SAVE_AS_XLSX = ("In Excel choose File > Save As, type Excel Workbook (.xlsx); in LibreOffice File > Save As, "
                 "type Excel 2007-365 (.xlsx), and keep that format when asked. Then upload the .xlsx.")
# Unpacked size caps per zip part (a downloaded checklist unpacks to ~90 KB, styles.xml ~6 KB). openpyxl builds
# Python objects ~30 times the XML's size: 30 MB of cells in one row, or 500,000 <xf> styles in 99 KB of
# upload, took 18-26 s of CPU and 700-800 MB. styles.xml is always read from this path; any other part
# (worksheets, shared strings) may be renamed, so one cap covers them all.
MAX_PART = 2 * 1024 * 1024
MAX_STYLES_PART = 512 * 1024
STYLES_PART = "xl/styles.xml"


@dataclass(frozen=True)
class UploadLimits:
    """Bounds on an uploaded workbook: bytes received, bytes once unzipped (in all and per part), zip entries."""

    max_bytes: int = 5 * 1024 * 1024
    max_uncompressed: int = 8 * 1024 * 1024
    max_entries: int = 1000
    max_part: int = MAX_PART
    max_styles_part: int = MAX_STYLES_PART


def check_package(data: bytes, limits: UploadLimits) -> None:
    """Refuse oversize bodies, non-xlsx files, macro-enabled workbooks and decompression bombs.

    Runs before any XML is parsed. Python's zipfile never inflates an entry past its declared size
    (a larger stream fails its CRC check), so the declared sizes summed here bound the real work.
    """
    if not data:
        raise ApiError(422, "invalid_checklist", "The upload is empty; send the checklist workbook (.xlsx).")
    if len(data) > limits.max_bytes:
        raise ApiError(413, "upload_too_large",
                       f"The upload is {len(data)} bytes; the limit is {limits.max_bytes} bytes.")
    if not data.startswith(_ZIP_MAGIC):
        raise ApiError(415, "unsupported_media_type", _not_a_zip(data))
    if data[30:30 + len(_ODS_MIMETYPE)] == _ODS_MIMETYPE:  # the first entry, as OpenDocument requires
        raise ApiError(415, "unsupported_media_type",
                       f"This is an OpenDocument spreadsheet (.ods), not an Excel workbook (.xlsx). {_SAVE_AS_XLSX}")
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        entries = archive.infolist()
    except (zipfile.BadZipFile, ValueError) as exc:
        raise ApiError(415, "unsupported_media_type", f"The upload is not a readable .xlsx file ({exc}).") from None
    if len(entries) > limits.max_entries:
        raise ApiError(413, "uncompressed_too_large",
                       f"The workbook has {len(entries)} parts; the limit is {limits.max_entries}.")
    _check_part_sizes(entries, limits)
    total = sum(info.file_size for info in entries)
    if total > limits.max_uncompressed:
        raise ApiError(413, "uncompressed_too_large",
                       f"The workbook would unpack to {total} bytes; the limit is {limits.max_uncompressed} "
                       "bytes. A checklist is far smaller; this looks like a decompression bomb.")
    for info in entries:
        if info.flag_bits & 0x1:
            raise ApiError(415, "unsupported_media_type",
                           "The workbook is encrypted (password-protected); save it without a password and upload again.")
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            # Excel writes stored or deflated parts; anything else made zipfile raise (a 500) further on.
            raise ApiError(415, "unsupported_media_type",
                           f"The workbook part {info.filename[:80]!r} uses a compression method Excel does not write.")
    names = {info.filename for info in entries}
    if any(name.lower().endswith("vbaproject.bin") for name in names):
        raise _macro_error()
    if "[Content_Types].xml" not in names:
        raise ApiError(415, "unsupported_media_type", "The upload is a zip file but not an Excel workbook.")
    try:
        content_types = archive.read("[Content_Types].xml").decode("utf-8", "replace")
    except (zipfile.BadZipFile, OSError, ValueError, RuntimeError, NotImplementedError, EOFError) as exc:
        raise ApiError(415, "unsupported_media_type", f"The workbook is damaged ({exc}).") from None
    if "macroEnabled" in content_types:
        raise _macro_error()
    if "spreadsheetml.sheet.main+xml" not in content_types:
        raise ApiError(415, "unsupported_media_type",
                       "The upload is an Office file but not an Excel workbook (.xlsx).")


def _not_a_zip(data: bytes) -> str:
    """What the user saved instead of an .xlsx, and how to save the checklist properly."""
    if data.startswith(_OLE2_MAGIC):
        if _ENCRYPTED_STREAM in data:
            return ("This workbook is password-protected (encrypted), so hrdd cannot read it. Remove the password "
                    "(Excel: File > Info > Protect Workbook > Encrypt with Password, clear it; LibreOffice: File > "
                    "Save As with 'Save with password' unticked), save as .xlsx and upload again.")
        return f"This is an Excel 97-2003 workbook (.xls), not an Excel workbook (.xlsx). {_SAVE_AS_XLSX}"
    if data.startswith(b"%PDF"):
        return ("This is a PDF (a printout of the checklist), not the workbook. Upload the Excel workbook (.xlsx) "
                "itself; attach the PDF to the licence application instead.")
    head = data[:4096]
    if b"\0" not in head.lstrip(b"\xff\xfe") and any(sep in head for sep in (b",", b";", b"\t")):
        return ("This is a text file (CSV or tab-separated), not an Excel workbook (.xlsx): saving as CSV keeps one "
                f"sheet and drops what ties the checklist to its screening. Download the checklist again, copy "
                f"your answers into it and save it as .xlsx. {_SAVE_AS_XLSX}")
    return "The upload is not an Excel workbook (.xlsx)."


def _check_part_sizes(entries: list[zipfile.ZipInfo], limits: UploadLimits) -> None:
    for info in entries:
        cap = limits.max_styles_part if info.filename == STYLES_PART else limits.max_part
        if info.file_size > cap:
            raise ApiError(413, "uncompressed_too_large",
                           f"The workbook part {info.filename[:80]!r} would unpack to {info.file_size} bytes; the "
                           f"limit is {cap} bytes. A checklist's parts are far smaller; save the checklist "
                           "again as downloaded, without added rows, columns or styles.")


def _macro_error() -> ApiError:
    return ApiError(415, "macro_enabled",
                    "Macro-enabled workbooks (.xlsm) are refused; save the checklist as .xlsx and upload again.")
