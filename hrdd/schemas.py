"""Marshmallow schemas at the HTTP boundary: the canonical transaction in, screenings and errors out."""

from __future__ import annotations

import functools
import re
from contextvars import ContextVar

import pycountry
from marshmallow import (
    INCLUDE,
    RAISE,
    Schema,
    ValidationError,
    fields,
    post_load,
    pre_load,
    validate,
    validates_schema,
)

from hrdd.model import ANSWER_VALUES, END_USER_TYPES, PARTY_ROLES, SECTORS, STAGES
from hrdd.reference.countries import CountryCodes, UnknownCountry, shipped_codes

# The country names of the schema being loaded (the deployment's reference data); nested schemas see it too.
_COUNTRY_CODES: ContextVar[CountryCodes | None] = ContextVar("hrdd_country_codes", default=None)
# False while a stored request is validated again (re-screening, a checklist upload): checks added since it
# was accepted (blank text, answer ids) must not push a stored deal out of monitoring.
_NEW_INPUT: ContextVar[bool] = ContextVar("hrdd_new_input", default=True)
# Unknown ids named in one 422 at most: the reply stays small whatever the body holds.
MAX_UNKNOWN_NAMED = 20
NO_CAPABILITY = "none"  # the taxonomy's id for an item with no surveillance capability


class Country(fields.String):
    """An ISO 3166-1 alpha-2 code; names like 'Egypt' and alpha-3 codes are accepted and normalised.

    Names are those of the loading ``TransactionSchema``'s ``country_codes`` (the deployment's reference
    data, with its ``country_names.yaml``), else of the shipped data.
    """

    def _deserialize(self, value, attr, data, **kwargs):
        text = super()._deserialize(value, attr, data, **kwargs)
        if len(text) > 100:
            raise ValidationError("A country is an ISO 3166-1 code or a name of at most 100 characters")
        codes = _COUNTRY_CODES.get() or shipped_codes()
        try:
            return codes.normalise(text)
        except UnknownCountry as exc:
            raise ValidationError(str(exc)) from exc


_ANSWER_ID = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
# What an ``hrdd_answer_ids`` implementation returns when it cannot say right now (its templates fail to
# load): the ids are then not checked rather than refusing deals over a broken file.
ANY_ANSWER_ID = "*"


class Text(fields.String):
    """Text that must not be blank (only whitespace) in new input; used exactly as sent otherwise."""

    def _deserialize(self, value, attr, data, **kwargs):
        text = super()._deserialize(value, attr, data, **kwargs)
        if (not text or text.isspace()) and _NEW_INPUT.get():
            raise ValidationError("Must not be blank.")
        return text


class StrictNumber(fields.Float):
    """A JSON number in new input: "2" or true is a wrong type, not a quantity (stored requests as before)."""

    def _deserialize(self, value, attr, data, **kwargs):
        if _NEW_INPUT.get() and (isinstance(value, bool) or not isinstance(value, int | float)):
            raise ValidationError(f"Must be a JSON number, not {_json_type(value)}.")
        return super()._deserialize(value, attr, data, **kwargs)


class StrictBoolean(fields.Boolean):
    """A JSON true or false in new input: the string "false" must not pass as a yes or a no."""

    def _deserialize(self, value, attr, data, **kwargs):
        if _NEW_INPUT.get() and not isinstance(value, bool):
            raise ValidationError(f"Must be true or false, not {_json_type(value)}.")
        return super()._deserialize(value, attr, data, **kwargs)


def _json_type(value) -> str:
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, int | float):
        return "a number"
    return "an array" if isinstance(value, list) else "an object" if isinstance(value, dict) else "null"


class Currency(fields.String):
    """An ISO 4217 code in capitals (e.g. USD); new input with another code is refused."""

    def _deserialize(self, value, attr, data, **kwargs):
        code = super()._deserialize(value, attr, data, **kwargs)
        if _NEW_INPUT.get() and code not in _iso_currencies():
            raise ValidationError(f"Not an ISO 4217 currency code: {code[:10]!r} (three capital letters, e.g. "
                                  "USD, EUR, JPY)")
        return code


@functools.cache
def _iso_currencies() -> frozenset[str]:
    return frozenset(c.alpha_3 for c in pycountry.currencies)


def _positive_quantity(value: float) -> None:
    if value <= 0 and _NEW_INPUT.get():
        raise ValidationError("Must be more than 0: leave out a line that sells nothing.")


def _text(max_len: int, **kw):
    return Text(validate=validate.Length(min=1, max=max_len), **kw)


class StrictSchema(Schema):
    """Rejects unknown fields so that typos never pass silently."""

    class Meta:
        unknown = RAISE


class ReferenceSchema(StrictSchema):
    system = _text(64, required=True)
    object_type = _text(64, required=True)
    object_id = _text(128, required=True)


class EndUserSchema(StrictSchema):
    name = _text(300, required=True)
    country = Country(required=True)
    type = fields.String(load_default="unknown", validate=validate.OneOf(END_USER_TYPES))
    sector = fields.String(load_default="other", validate=validate.OneOf(SECTORS))


class PartySchema(StrictSchema):
    role = fields.String(required=True, validate=validate.OneOf(PARTY_ROLES))
    name = _text(300, required=True)
    country = Country(load_default=None, allow_none=True)
    government_linked = StrictBoolean(load_default=None, allow_none=True)


class ItemSchema(StrictSchema):
    sku = _text(100, required=True)
    name = _text(300, required=True)
    capabilities = fields.List(fields.String(validate=validate.Length(min=1, max=64)), required=True,
                               validate=validate.Length(min=1, max=20))
    eccn = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=40))
    quantity = StrictNumber(load_default=1, validate=(validate.Range(min=0), _positive_quantity),
                            metadata={"exclusiveMinimum": True})
    unit_price = StrictNumber(load_default=None, allow_none=True, validate=validate.Range(min=0))
    currency = Currency(load_default=None, allow_none=True, validate=validate.Length(equal=3),
                        metadata={"description": "ISO 4217 code in capitals, e.g. USD"})
    component_of_surveillance_system = StrictBoolean(load_default=False)

    @validates_schema(skip_on_field_errors=True)
    def _none_alone(self, data, **kwargs):
        caps = data.get("capabilities") or ()
        if NO_CAPABILITY in caps and len(set(caps)) > 1 and _NEW_INPUT.get():
            raise ValidationError({"capabilities": [
                f"{NO_CAPABILITY!r} says the item has no capability in the taxonomy: list it alone, or list "
                "only the item's capabilities"]})


class TransactionSchema(StrictSchema):
    """The canonical transaction (request body of POST /v1/screenings)."""

    reference = fields.Nested(ReferenceSchema, required=True)
    stage = fields.String(required=True, validate=validate.OneOf(STAGES))
    end_user = fields.Nested(EndUserSchema, required=True)
    parties = fields.List(fields.Nested(PartySchema), load_default=list, validate=validate.Length(max=50))
    items = fields.List(fields.Nested(ItemSchema), required=True, validate=validate.Length(min=1, max=200))
    deployment_countries = fields.List(Country(), load_default=list, validate=validate.Length(max=60))
    intended_use = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=4000))
    answers = fields.Dict(keys=fields.String(validate=validate.Regexp(
                              _ANSWER_ID,
                              error="An answer is keyed by a checklist question id: a lowercase letter, then "
                                    "lowercase letters, digits or _ (at most 64), e.g. past_misuse")),
                          values=fields.String(validate=validate.OneOf(ANSWER_VALUES)), load_default=dict,
                          validate=validate.Length(max=200))

    def __init__(self, *args, capabilities=(), country_codes=None, answer_ids=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.known_capabilities = tuple(capabilities)
        self._capability_set = frozenset(capabilities)
        self.country_codes = country_codes
        # A callable, asked only when a body has answers: the ids can change while the service runs.
        self.answer_ids = answer_ids

    def load(self, data, *, stored: bool = False, **kwargs):
        """Deserialize and validate, reading country names with this schema's ``country_codes``.

        ``stored`` is for a request accepted earlier and validated again: rules added since (blank text,
        answer ids) are not applied to it.
        """
        token = _COUNTRY_CODES.set(self.country_codes)
        new_input = _NEW_INPUT.set(not stored)
        try:
            return super().load(data, **kwargs)
        finally:
            _NEW_INPUT.reset(new_input)
            _COUNTRY_CODES.reset(token)

    # Marshmallow validates every element of a list before its length: a 786 KB body of 260,000 empty items
    # made a 55 MB reply. Over-long lists are refused first, alone, so work and reply stay bounded.
    @pre_load
    def _bounded_lists(self, data, **kwargs):
        if not isinstance(data, dict):
            return data
        errors: dict = {}
        for name in ("items", "parties", "deployment_countries", "answers"):
            value = data.get(name)
            if isinstance(value, list | dict):
                _check_length(self.fields[name], value, errors, name)
        items = data.get("items")
        if isinstance(items, list) and "items" not in errors:
            capabilities = self.fields["items"].inner.schema.fields["capabilities"]
            for n, item in enumerate(items):
                caps = item.get("capabilities") if isinstance(item, dict) else None
                if isinstance(caps, list):
                    _check_length(capabilities, caps, errors.setdefault("items", {}).setdefault(n, {}),
                                  "capabilities")
                    if not errors["items"][n]:
                        del errors["items"][n]
            if not errors.get("items"):
                errors.pop("items", None)
        if errors:
            raise ValidationError(errors)
        return data

    # Run on the body as sent, even when other fields are wrong, so one 422 names every unknown id; the
    # known ids are listed once, in the first message.
    @validates_schema(pass_original=True, skip_on_field_errors=False)
    def _known_ids(self, data, original, **kwargs):
        if not isinstance(original, dict):
            return
        errors: dict = {}
        items = original.get("items")
        if self._capability_set and isinstance(items, list):
            listed = f"; known: {', '.join(self.known_capabilities)}"
            item_errors: dict = {}
            # Past 200 items the length error stands; a body cannot make the reply grow without bound.
            for n, item in enumerate(items[:200]):
                caps = item.get("capabilities") if isinstance(item, dict) else None
                unknown = [c for c in caps if isinstance(c, str) and c not in self._capability_set] \
                    if isinstance(caps, list) else []
                if unknown and len(item_errors) < MAX_UNKNOWN_NAMED:
                    named = ", ".join(repr(c[:64]) for c in unknown[:MAX_UNKNOWN_NAMED])
                    item_errors[n] = {"capabilities": [f"Unknown capability {named}{listed}"]}
                    listed = " (the known ids are listed in the first capability error)"
            if item_errors:
                errors["items"] = item_errors
        answers = original.get("answers")
        if isinstance(answers, dict) and answers and self.answer_ids is not None and _NEW_INPUT.get():
            known = self.answer_ids()
            unknown = [k for k in answers if isinstance(k, str) and _ANSWER_ID.match(k) and k not in known] \
                if known and ANY_ANSWER_ID not in known else []
            if unknown:
                listed = f"; known: {', '.join(sorted(known))}"
                errors["answers"] = {}
                for k in unknown[:MAX_UNKNOWN_NAMED]:
                    errors["answers"][k] = [f"Unknown checklist question id {k!r}{listed}"]
                    listed = " (the known ids are listed in the first answers error)"
        if errors:
            raise ValidationError(errors)

    def handle_error(self, error, data, **kwargs):
        """Name an unknown answer id as ``answers.<id>`` (marshmallow files it under ``_schema`` when its
        value is wrong too): the id is the problem; its value's message follows."""
        answers = error.messages.get("answers") if isinstance(error.messages, dict) else None
        for key, value in (answers or {}).items() if isinstance(answers, dict) else ():
            if isinstance(value, dict) and "_schema" in value:
                answers[key] = [*value.pop("_schema"), *(m for ms in value.values() for m in ms)]

    @post_load
    def _dedupe(self, data, **kwargs):
        data["deployment_countries"] = list(dict.fromkeys(data["deployment_countries"]))
        for item in data["items"]:
            item["capabilities"] = list(dict.fromkeys(item["capabilities"]))
        return data


def _check_length(field, value, errors: dict, name: str) -> None:
    for check in field.validators:
        if isinstance(check, validate.Length):
            try:
                check(value)
            except ValidationError as exc:
                errors[name] = exc.messages


# ---- responses (documentation of what the API returns; used for OpenAPI) ----

class ResponseSchema(Schema):
    """A response body: the documented fields, and plugins may add more (additionalProperties allowed)."""

    class Meta:
        unknown = INCLUDE


class ErrorSchema(Schema):
    code = fields.String(metadata={"description": "machine-readable error code"})
    status = fields.Integer()
    message = fields.String(metadata={"description": "what is wrong, naming the fields"})
    errors = fields.Dict(metadata={"description": "per-field messages"})


class RedFlagSchema(ResponseSchema):
    id = fields.String()
    step = fields.Integer()
    severity = fields.String(validate=validate.OneOf(("low", "medium", "high", "critical")))
    title = fields.String()
    evidence = fields.String()
    source = fields.String()
    data = fields.Dict()
    raised_by = fields.String()


class StepSchema(ResponseSchema):
    step = fields.Integer()
    title = fields.String()
    status = fields.String()
    flags = fields.List(fields.String())


class SafeguardSchema(ResponseSchema):
    id = fields.String()
    kind = fields.String()
    title = fields.String()


class RiskSchema(ResponseSchema):
    score = fields.Integer()
    level = fields.String()


class ReviewSafeguardSchema(ResponseSchema):
    id = fields.String()
    title = fields.String()


class ReviewSchema(ResponseSchema):
    """The reviewer's decision in force for the deal's governing screening."""

    decision_id = fields.String()
    case_id = fields.String()
    outcome = fields.String(validate=validate.OneOf(("approve", "approve_with_conditions", "decline",
                                                     "request_information")))
    label = fields.String(metadata={"description": "the outcome in words"})
    gate = fields.String(metadata={"description": "the gate the outcome sets (request_information: hold)"})
    decided_at = fields.String()
    decided_by = fields.String(metadata={"description": "who decided: user:NAME or key:NAME (never a secret)"})
    conditions = fields.String(allow_none=True, metadata={
        "description": "the reviewer's conditions, word for word (null for request_information)"})
    safeguards = fields.List(fields.Nested(ReviewSafeguardSchema), metadata={
        "description": "the safeguards the reviewer requires, with the titles the screening gave them"})
    information_requested = fields.String(allow_none=True, metadata={
        "description": "for request_information, what the reviewer asked for; otherwise null"})


_REVIEW_DESCRIPTION = (
    "the reviewer's decision in force (approve, approve_with_conditions, decline or request_information), "
    "or null when none applies to the governing screening (no decision yet, or a material change ended it)")
_OUTSTANDING_DESCRIPTION = (
    "the conditions (ids as in the screening's conditions) not met yet, now: reviewer_approval until a "
    "reviewer approves, rider_executed until an executed rider covers the deal and the reviewer's "
    "conditions (also after an approval by two reviewers of a screening whose conditions name no rider), "
    "checklist_completed until a screening has the checklist's answers")


class ScreeningSchema(ResponseSchema):
    """A stored screening (201 on creation, 200 on an idempotent replay)."""

    id = fields.String(allow_none=True, metadata={"description": "null on a dry run (nothing stored)"})
    transaction_id = fields.String(allow_none=True, metadata={"description": "null on a dry run"})
    created_at = fields.String(allow_none=True, metadata={"description": "null on a dry run"})
    stage = fields.String()
    decision = fields.String(validate=validate.OneOf(("proceed", "proceed_with_safeguards", "escalate",
                                                      "do_not_proceed")))
    gate = fields.String(validate=validate.OneOf(("release", "release_with_conditions", "hold", "block")),
                         metadata={"description": "the transaction's effective gate (reviewer decisions and "
                                                  "order-stage holds applied)"})
    engine_gate = fields.String(validate=validate.OneOf(("release", "release_with_conditions", "hold", "block")),
                                metadata={"description": "the gate the engine's decision alone implies"})
    dry_run = fields.Boolean(metadata={"description": "true when screened without storing (?dry_run=true)"})
    risk = fields.Nested(RiskSchema)
    red_flags = fields.List(fields.Nested(RedFlagSchema))
    steps = fields.List(fields.Nested(StepSchema))
    safeguards = fields.List(fields.Nested(SafeguardSchema))
    conditions = fields.List(fields.String(), metadata={
        "description": "the conditions as screened (the engine's, part of the immutable record): "
                       "reviewer_approval, rider_executed, checklist_completed; what is still to be done is "
                       "outstanding_conditions"})
    outstanding_conditions = fields.List(fields.String(), metadata={"description": _OUTSTANDING_DESCRIPTION})
    review = fields.Nested(ReviewSchema, allow_none=True, metadata={"description": _REVIEW_DESCRIPTION})
    tailoring = fields.List(fields.Dict())
    party_matches = fields.List(fields.Dict())
    documents = fields.Dict()
    versions = fields.Dict()
    transaction = fields.Nested(TransactionSchema)
    hold_reasons = fields.List(fields.String(), metadata={
        "description": "why the gate holds or blocks: the engine's decision, reviewer decisions, order-stage holds"})
    superseded_by = fields.String(metadata={
        "description": "the screening that governs the gate instead: a newer one, or one at a later stage "
                       "(a quote stored after the order does not take the deal back)"})
    superseded_because = fields.String(metadata={
        "description": "when a screening at a later stage governs: that the deal is already at that stage"})
    answers_on_record = fields.Dict(keys=fields.String(), values=fields.Dict(), metadata={
        "description": "answers recorded for the deal outside the request (its checklist uploads, newest per "
                       "question): used where the request left the question out or answered unknown; used=false "
                       "with request_answer where the request answered otherwise (the gate then holds); "
                       "facts_changed naming the deal's facts that changed since the upload (parties, items, "
                       "countries, deployment countries), and then, for an answer that raises no red flag, "
                       "used=false with not_used_because (the question counts as unanswered; no hold)"})


class TransactionRecordSchema(ResponseSchema):
    """A business reference's screenings across stages, newest first, with the current gate."""

    id = fields.String()
    reference = fields.Nested(ReferenceSchema)
    created_at = fields.String()
    updated_at = fields.String()
    latest_screening_id = fields.String()
    gate = fields.String()
    decision = fields.String()
    hold_reasons = fields.List(fields.String())
    review = fields.Nested(ReviewSchema, allow_none=True, metadata={"description": _REVIEW_DESCRIPTION})
    outstanding_conditions = fields.List(fields.String(), metadata={
        "description": "of the latest screening: " + _OUTSTANDING_DESCRIPTION})
    screenings = fields.List(fields.Dict(), metadata={"description": "a page of screenings, newest first"})
    screenings_total = fields.Integer(metadata={"description": "all screenings of the transaction"})
    limit = fields.Integer()
    offset = fields.Integer()
    next = fields.String(metadata={"description": "the next page, when there is one"})
