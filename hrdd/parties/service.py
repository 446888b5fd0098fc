"""Screening names against the active lists: index cached per list version, false positives applied."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from hrdd.parties import storage
from hrdd.parties.index import IndexSettings, PartyIndex
from hrdd.parties.loaders import load_file
from hrdd.parties.matcher import Matcher, MatchPolicy
from hrdd.parties.normalize import default_normaliser

DEFAULT_LIST_FILE = "restricted_parties_compiled_us_jp_ca.csv"
DEFAULT_LIST_NAME = "compiled-us-jp-ca"
# How long a process trusts its view of the database's lists and decisions before asking again, so a
# list loaded or a decision taken by another process applies within this many seconds.
CHECK_SECONDS = 1.0

_lock = threading.RLock()
_indexes: dict[tuple, PartyIndex] = {}
_states: dict[str, _StoreState] = {}
_recent: dict[tuple, tuple[float, Matcher, object]] = {}


class NoListError(RuntimeError):
    """No list is loaded and the shipped default is missing: screening cannot be done."""


@dataclass
class _StoreState:
    lists_checked: float = -1.0
    active: tuple[storage.ActiveList, ...] = ()
    decisions_checked: float = -1.0
    decisions: dict = field(default_factory=dict)
    matchers: dict = field(default_factory=dict)


@dataclass(frozen=True)
class NameResult:
    """What screening one name found: matches to flag, and matches a reviewer has cleared."""

    matches: list[dict[str, Any]]
    suppressed: list[dict[str, Any]]
    list_version: str


def policy_settings(policy) -> tuple[IndexSettings, MatchPolicy]:
    """Index and match settings from the policy's ``parties`` section (raises ValueError when invalid)."""
    section = policy.section("parties") if policy is not None else {}
    return IndexSettings.from_policy(section), MatchPolicy.from_policy(section)


def current_matcher(store, data_dir: str | Path, policy) -> Matcher:
    """``matcher_for``, answered from memory for CHECK_SECONDS (the screening hot path)."""
    key = (store.url if store is not None else str(data_dir), id(policy))
    now = time.monotonic()
    hit = _recent.get(key)
    if hit is not None and now - hit[0] <= CHECK_SECONDS and hit[2] is policy:
        return hit[1]
    matcher = matcher_for(store, data_dir, policy)
    _recent[key] = (now, matcher, policy)
    return matcher


def invalidate(store=None) -> None:
    """Forget what this process knows about a store's lists and decisions (after it changed them)."""
    with _lock:
        if store is None:
            _states.clear()
            _recent.clear()
        else:
            _states.pop(store.url, None)
            for key in [k for k in _recent if k[0] == store.url]:
                _recent.pop(key, None)


def matcher_for(store, data_dir: str | Path, policy) -> Matcher:
    """The matcher for the active lists (the shipped default is loaded into an empty store first)."""
    settings, match_policy = policy_settings(policy)
    if store is None:
        return _file_matcher(Path(data_dir) / DEFAULT_LIST_FILE, settings, match_policy)
    state = _state(store)
    now = time.monotonic()
    if now - state.lists_checked > CHECK_SECONDS:
        active = storage.active_lists(store)
        if not active:
            active = ensure_default_list(store, data_dir)
        state.active, state.lists_checked = active, now
    active = state.active
    label = "+".join(a.label for a in active)
    key = (label, settings, match_policy)
    matcher = state.matchers.get(key)
    if matcher is None:
        index = _index(("db", tuple((a.label, a.sha256, a.format) for a in active), settings),
                       lambda: _db_index(store, active, settings))
        matcher = state.matchers[key] = Matcher(index, match_policy, label,
                                                str(max(a.version_id for a in active)))
    return matcher


def list_label(store, data_dir: str | Path, policy) -> str:
    """The lists screenings use, e.g. ``compiled-us-jp-ca@1`` or ``csl@3+own@4``."""
    return current_matcher(store, data_dir, policy).list_version


def screen_name(store, data_dir: str | Path, policy, name: str, country: str | None = None,
                matcher: Matcher | None = None) -> NameResult:
    """Matches for a name with the standing false-positive decisions for that name applied."""
    matcher = matcher or current_matcher(store, data_dir, policy)
    matches = matcher.screen(name, country)
    if not matches or store is None:
        return NameResult(list(matches), [], matcher.list_version)
    decisions = _decisions(store)
    party_key = default_normaliser().normalise(name).key
    kept, suppressed = [], []
    now = storage.utcnow()
    for match in matches:
        decision = _standing(decisions.get((party_key, match["entry_id"]), ()), match, now)
        if decision is None:
            kept.append(match)
        else:
            suppressed.append({**match, "false_positive": _public(decision)})
    return NameResult(kept, suppressed, matcher.list_version)


def ensure_default_list(store, data_dir: str | Path) -> tuple[storage.ActiveList, ...]:
    """Load the shipped compiled list as the first version when no list has been loaded."""
    # The lock is the database's, not this process's: instances sharing a store load the list once.
    with _lock, store.exclusive("hrdd.parties.default_list"):
        active = storage.active_lists(store)
        if active:
            return active
        path = Path(data_dir) / DEFAULT_LIST_FILE
        if not path.exists():
            raise NoListError(f"no restricted-party list is loaded and the shipped default {path} is missing; "
                              "load one with `hrdd lists load FILE`")
        loaded = load_file(path, "compiled")
        storage.save_version(store, loaded, DEFAULT_LIST_NAME, "hrdd (shipped default, loaded on first use)",
                             sum(len(e.names()) for e in loaded.entries))
        return storage.active_lists(store)


def _standing(decisions, match: dict[str, Any], now: datetime) -> dict[str, Any] | None:
    list_name = match["list_version"].rsplit("@", 1)[0]
    for decision in decisions:
        if decision["entry_hash"] != match["entry_hash"]:
            continue  # the listing changed since the decision: screen again
        if decision["expires_at"] is not None and decision["expires_at"] <= now:
            continue
        if decision["list_name"] != list_name:
            continue
        return decision
    return None


def _public(decision: dict[str, Any]) -> dict[str, Any]:
    return {"id": decision["id"], "reason": decision["reason"], "author": decision["author"],
            "created_at": _iso(decision["created_at"]), "expires_at": _iso(decision["expires_at"])}


def _iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


def _state(store) -> _StoreState:
    state = _states.get(store.url)
    if state is None:
        with _lock:
            state = _states.setdefault(store.url, _StoreState())
    return state


def _decisions(store) -> dict:
    state = _state(store)
    now = time.monotonic()
    if now - state.decisions_checked > CHECK_SECONDS:
        state.decisions, state.decisions_checked = storage.standing_false_positives(store), now
    return state.decisions


def _index(key: tuple, build) -> PartyIndex:
    index = _indexes.get(key)
    if index is None:
        with _lock:
            index = _indexes.get(key)
            if index is None:
                index = build()
                while len(_indexes) >= 4:  # keep the newest few (a reload briefly needs two)
                    _indexes.pop(next(iter(_indexes)))
                _indexes[key] = index
    return index


def _db_index(store, active, settings: IndexSettings) -> PartyIndex:
    entries, hashes, versions = storage.load_entries(store, [a.version_id for a in active])
    labels = {a.version_id: a.label for a in active}
    return PartyIndex(entries, settings, hashes=hashes, sources=[labels[v] for v in versions])


def _file_matcher(path: Path, settings: IndexSettings, match_policy: MatchPolicy) -> Matcher:
    # Offline screening (no store): the shipped file itself, keyed by its size and time so edits show.
    try:
        stat = path.stat()
    except OSError as exc:
        raise NoListError(f"restricted-party list {path} cannot be read ({exc.strerror})") from exc
    key = ("file", str(path), stat.st_size, stat.st_mtime_ns, settings)
    index = _index(key, lambda: PartyIndex(load_file(path, "compiled").entries, settings))
    with _lock:
        matcher = _file_matchers.get((key, match_policy))
        if matcher is None:
            matcher = _file_matchers[(key, match_policy)] = Matcher(index, match_policy, f"{DEFAULT_LIST_NAME}@file", "file")
    return matcher


_file_matchers: dict[tuple, Matcher] = {}
