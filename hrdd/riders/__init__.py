"""Contract riders: a clause library lawyers edit, selected by a screening and assembled into Word."""

from __future__ import annotations

import os
from pathlib import Path

from hrdd.config import DEFAULT_CLAUSES_DIR, cached_path
from hrdd.riders.build import DOCX_MIMETYPE, build_document, build_rider
from hrdd.riders.conditions import Facts
from hrdd.riders.library import ClauseLibraryError, Library, Problem, load_library
from hrdd.riders.selection import Selection, SelectionError, select
from hrdd.riders.variables import VariableError
from hrdd.riders.vocabulary import Vocabulary


def clauses_dir(config=None) -> Path:
    """The clause directory: ``HRDD_CLAUSES_DIR`` from the given config, the environment, or the default."""
    value = (config or {}).get("HRDD_CLAUSES_DIR") or os.environ.get("HRDD_CLAUSES_DIR")
    return cached_path(str(value)) if value else DEFAULT_CLAUSES_DIR


def configured_library(config=None, strict: bool = False) -> Library:
    """The clause library of ``HRDD_CLAUSES_DIR``, checked against the configured data's vocabulary."""
    config = config or {}
    return load_library(clauses_dir(config), Vocabulary.from_data_dir(config.get("HRDD_DATA_DIR")), strict)


__all__ = [
    "DOCX_MIMETYPE", "DEFAULT_CLAUSES_DIR", "ClauseLibraryError", "Facts", "Library", "Problem", "Selection",
    "SelectionError", "VariableError", "build_document", "build_rider", "clauses_dir", "configured_library",
    "load_library",
    "select",
]
