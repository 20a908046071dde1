"""What a segment is made of: AND / OR / NOT groups over typed conditions, validated strictly.

A definition is plain JSON (stored in `Segment.definition`, sent to the API, built by the segment
builder page), for example "Russian-speaking customers who ordered in the last 30 days and are not
tagged vip":

    {"type": "and", "conditions": [
        {"type": "field", "field": "locale", "op": "eq", "value": "ru"},
        {"type": "orders", "metric": "days_since_last", "op": "lte", "value": 30},
        {"type": "not", "condition": {"type": "tag", "op": "has", "tag": "vip"}}]}

Every model forbids unknown keys, and each condition checks that its operator fits its field and
that its value has the right type, so a typo is a clear 422 instead of a segment that silently
matches everyone or no one.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any, Literal, Union
from zoneinfo import available_timezones

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from hub.json_sql import KEY_PATTERN
from hub.web.i18n import N_, PYDANTIC_MESSAGES, FieldError, field_errors

LOCALES = ("ru", "en")
MAX_DEPTH = 6
MAX_NODES = 100
MAX_DAYS = 36_500
Comparison = Literal["eq", "ne", "gt", "gte", "lt", "lte"]


class _Node(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --- conditions ---------------------------------------------------------------------------------

FIELD_OPS: dict[str, tuple[str, ...]] = {
    "display_name": ("eq", "ne", "contains", "is_set", "is_empty"),
    "locale": ("eq", "ne", "in", "not_in", "is_set", "is_empty"),
    "time_zone": ("eq", "ne", "in", "not_in", "is_set", "is_empty"),
    "lifecycle_stage": ("eq", "ne", "in", "not_in"),
    "owner_id": ("eq", "ne", "is_set", "is_empty"),
    "created_at": ("before", "after", "within_days", "older_than_days"),
}


class FieldCondition(_Node):
    """A contact's own field: display name, locale, time zone, lifecycle stage, owner, creation time."""

    type: Literal["field"]
    field: Literal["display_name", "locale", "time_zone", "lifecycle_stage", "owner_id", "created_at"]
    op: Literal["eq", "ne", "in", "not_in", "contains", "is_set", "is_empty", "before", "after",
                "within_days", "older_than_days"]
    value: AwareDatetime | int | str | list[str | int] | None = None

    @model_validator(mode="before")
    @classmethod
    def _times(cls, data: Any) -> Any:
        # A JSON time arrives as text; only before/after on created_at read it as a time.
        if isinstance(data, dict) and data.get("op") in ("before", "after") and isinstance(data.get("value"), str):
            from pydantic import TypeAdapter

            try:
                data = {**data, "value": TypeAdapter(AwareDatetime).validate_python(data["value"])}
            except ValidationError:
                raise ValueError(f"{data['value']!r} is not a date and time with a time zone offset") from None
        return data

    @model_validator(mode="after")
    def _fits(self) -> FieldCondition:
        if self.op not in FIELD_OPS[self.field]:
            raise ValueError(f"operator {self.op!r} does not apply to {self.field}; use one of "
                             f"{', '.join(FIELD_OPS[self.field])}")
        value = self.value
        if self.op in ("is_set", "is_empty"):
            if value is not None:
                raise ValueError(f"operator {self.op!r} takes no value")
            return self
        if self.op in ("in", "not_in"):
            if not isinstance(value, list) or not value or len(value) > 100:
                raise ValueError(f"operator {self.op!r} needs a list of 1 to 100 values")
            for item in value:
                self._check_one(item)
            return self
        if self.op in ("within_days", "older_than_days"):
            if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_DAYS:
                raise ValueError(f"operator {self.op!r} needs a whole number of days from 0 to {MAX_DAYS}")
            return self
        if self.op in ("before", "after"):
            if not hasattr(value, "tzinfo"):
                raise ValueError(f"operator {self.op!r} needs a date and time with a time zone offset")
            return self
        self._check_one(value)
        return self

    def _check_one(self, value: Any) -> None:
        if self.field == "owner_id":
            if not isinstance(value, int) or isinstance(value, bool):
                raise ValueError("owner_id needs a user id (a whole number)")
            return
        if not isinstance(value, str) or not value.strip() or len(value) > 300:
            raise ValueError(f"{self.field} needs a non-empty text value of at most 300 characters")
        if self.field == "locale" and value not in LOCALES:
            raise ValueError(f"{value!r} is not a supported locale; use one of {', '.join(LOCALES)}")
        if self.field == "time_zone" and value not in _zones():
            raise ValueError(f"{value!r} is not an IANA time zone (e.g. Europe/Moscow)")


_ZONES: frozenset[str] | None = None


def _zones() -> frozenset[str]:
    global _ZONES
    if _ZONES is None:
        _ZONES = frozenset(available_timezones())
    return _ZONES


class TagCondition(_Node):
    type: Literal["tag"]
    op: Literal["has", "has_not"] = "has"
    tag: str = Field(min_length=1, max_length=60)


class AttributeCondition(_Node):
    """A custom attribute: equals / does not equal / contains / exists / numeric comparisons."""

    type: Literal["attribute"]
    key: str = Field(pattern=KEY_PATTERN, description="Letters, digits, '_', '-' and spaces")
    op: Literal["eq", "ne", "contains", "exists", "not_exists", "gt", "gte", "lt", "lte"]
    value: bool | int | Decimal | str | None = None

    @model_validator(mode="after")
    def _fits(self) -> AttributeCondition:
        if self.op in ("exists", "not_exists"):
            if self.value is not None:
                raise ValueError(f"operator {self.op!r} takes no value")
        elif self.op == "contains":
            if not isinstance(self.value, str) or not self.value:
                raise ValueError("operator 'contains' needs a non-empty text value")
        elif self.op in ("gt", "gte", "lt", "lte"):
            if isinstance(self.value, bool) or not isinstance(self.value, (int, Decimal)):
                raise ValueError(f"operator {self.op!r} needs a number")
        elif self.value is None:
            raise ValueError(f"operator {self.op!r} needs a value (text, number, true or false)")
        if isinstance(self.value, str) and len(self.value) > 1000:
            raise ValueError("value must be at most 1000 characters")
        return self


class ConsentCondition(_Node):
    """The decision in force (the newest record) for a channel and purpose; 'none' = never decided."""

    type: Literal["consent"]
    channel: str = Field(pattern=r"^[a-z][a-z0-9_]{0,39}$")
    purpose: Literal["marketing", "transactional"] = "marketing"
    status: Literal["granted", "withdrawn", "none"]


class IdentityCondition(_Node):
    type: Literal["identity"]
    kind: Literal["email", "phone"]
    has: bool = True


class ActivityCondition(_Node):
    """At least `min_count` timeline events of this kind / channel / direction in the last `days` days."""

    type: Literal["activity"]
    kind: str | None = Field(default=None, max_length=60, examples=["order.completed", "form.submitted"])
    channel: str | None = Field(default=None, max_length=40)
    direction: Literal["in", "out", "internal"] | None = None
    days: int | None = Field(default=None, ge=1, le=MAX_DAYS, description="None: ever")
    min_count: int = Field(default=1, ge=1, le=1_000_000)


class CampaignCondition(_Node):
    """Engagement with one campaign, read from its timeline events (thread key campaign:<id>)."""

    type: Literal["campaign"]
    campaign_id: int = Field(ge=1)
    event: Literal["received", "opened", "clicked", "unsubscribed", "replied", "opened_not_clicked"]


class LastCampaignCondition(_Node):
    """Whether the contact answered (an inbound email or SMS) after their latest campaign message."""

    type: Literal["last_campaign"]
    replied: bool


class OrdersCondition(_Node):
    """Order figures: number of orders, total spent (in one currency), days since the last order."""

    type: Literal["orders"]
    metric: Literal["count", "total", "days_since_last"]
    op: Comparison
    value: Decimal = Field(ge=0, max_digits=20, decimal_places=4)
    currency: str | None = Field(default=None, pattern=r"^[A-Z]{3}$")

    @model_validator(mode="after")
    def _fits(self) -> OrdersCondition:
        if self.metric == "total" and self.currency is None:
            raise FieldError("currency", N_("A total needs its currency: enter a code such as RUB."))
        if self.metric != "total" and self.currency is not None:
            raise ValueError("currency applies only to the metric 'total'")
        if self.metric != "total" and self.value != self.value.to_integral_value():
            raise FieldError("value", PYDANTIC_MESSAGES["int_parsing"], label=LABELS["value"])
        if self.metric == "days_since_last" and self.op in ("eq", "ne"):
            raise ValueError("days_since_last compares with lt, lte, gt or gte")
        return self


class TopSpendersCondition(_Node):
    """RFM-style: the contacts whose total spent (in one currency) is in the top `percent` %."""

    type: Literal["top_spenders"]
    percent: int = Field(ge=1, le=100)
    currency: str = Field(pattern=r"^[A-Z]{3}$")


SURVEY_RANGES = {"nps": (0, 10), "csat": (1, 5)}


class SurveyCondition(_Node):
    """The latest survey answer carrying this score (NPS 0–10, CSAT 1–5)."""

    type: Literal["survey"]
    metric: Literal["nps", "csat"]
    op: Comparison
    value: int

    @field_validator("value", mode="before")
    @classmethod
    def _whole(cls, value: Any) -> Any:
        if isinstance(value, bool):
            raise ValueError("needs a whole number")
        return value

    @model_validator(mode="after")
    def _fits(self) -> SurveyCondition:
        low, high = SURVEY_RANGES[self.metric]
        if not low <= self.value <= high:
            raise FieldError("value", N_("%(metric)s scores go from %(low)s to %(high)s: enter a score in that range."),
                             metric=self.metric.upper(), low=low, high=high)
        return self


ACCOUNT_OPS: dict[str, tuple[str, ...]] = {
    "any": ("is_set", "is_empty"),
    "is_key": ("eq",),
    "name": ("eq", "contains"),
    "kind": ("eq", "ne"),
    "owner_id": ("eq", "ne", "is_set", "is_empty"),
    "profit_band": ("eq", "ne", "in", "not_in"),
    "temperature": ("gt", "gte", "lt", "lte", "is_set", "is_empty"),
    "attribute": ("eq", "contains", "exists"),
}
ACCOUNT_KINDS = ("company", "household")
PROFIT_BANDS = ("top", "profitable", "break_even", "loss")  # keyaccounts.figures keeps account.profit_band


class AccountCondition(_Node):
    """The contact's account (company or household): whether it has one, the account's fields, its
    key flag, its profit band and its temperature (precomputed on the account row by the scheduler;
    a contact without an account matches only `any is_empty`)."""

    type: Literal["account"]
    field: Literal["any", "is_key", "name", "kind", "owner_id", "profit_band", "temperature", "attribute"]
    op: Literal["eq", "ne", "in", "not_in", "contains", "is_set", "is_empty", "exists", "gt", "gte", "lt", "lte"]
    key: str | None = Field(default=None, pattern=KEY_PATTERN, description="The attribute's name (field attribute)")
    value: bool | int | str | list[str] | None = None

    @model_validator(mode="after")
    def _fits(self) -> AccountCondition:
        if self.op not in ACCOUNT_OPS[self.field]:
            raise ValueError(f"operator {self.op!r} does not apply to the account's {self.field}; use one of "
                             f"{', '.join(ACCOUNT_OPS[self.field])}")
        if (self.key is not None) != (self.field == "attribute"):
            raise ValueError("key names the attribute: give it for the field 'attribute' only")
        value = self.value
        if self.op in ("is_set", "is_empty", "exists"):
            if value is not None:
                raise ValueError(f"operator {self.op!r} takes no value")
        elif self.field == "is_key":
            if not isinstance(value, bool):
                raise ValueError("is_key needs true or false")
        elif self.field == "owner_id":
            if not isinstance(value, int) or isinstance(value, bool):
                raise ValueError("owner_id needs a user id (a whole number)")
        elif self.field == "temperature":
            if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 100:
                raise FieldError("value", N_("A temperature goes from 0 to 100: enter a whole number in that range."))
        elif self.field == "kind":
            if value not in ACCOUNT_KINDS:
                raise ValueError(f"kind is one of {', '.join(ACCOUNT_KINDS)}")
        elif self.field == "profit_band":
            values = value if self.op in ("in", "not_in") else [value]
            if not isinstance(values, list) or not values or any(v not in PROFIT_BANDS for v in values):
                raise ValueError(f"profit_band is one of {', '.join(PROFIT_BANDS)}"
                                 + (" (a list of them)" if self.op in ("in", "not_in") else ""))
        elif not isinstance(value, str) or not value.strip() or len(value) > 300:
            raise ValueError(f"the account's {self.field} needs a non-empty text value of at most 300 characters")
        return self


# The cells of the RFM grid (analytics.rfm.CELLS), scored by the analytics extension.
RFM_CELLS = ("champions", "loyal", "potential_loyalists", "new", "promising", "need_attention", "about_to_sleep",
             "at_risk", "cant_lose", "hibernating", "lost")


class RfmCondition(_Node):
    """The contact's precomputed RFM scores (analytics): its grid cell, a quintile score 1–5, its
    lifetime value so far or its predicted value (in the analytics currency)."""

    type: Literal["rfm"]
    measure: Literal["cell", "r", "f", "m", "lifetime_value", "predicted_value"] = "cell"
    op: Literal["eq", "ne", "gt", "gte", "lt", "lte"] = "eq"
    value: int | Decimal | str

    @model_validator(mode="after")
    def _fits(self) -> RfmCondition:
        if self.measure == "cell":
            if self.op not in ("eq", "ne"):
                raise ValueError("a cell compares with eq or ne")
            if self.value not in RFM_CELLS:
                raise ValueError(f"{self.value!r} is not an RFM cell; use one of {', '.join(RFM_CELLS)}")
        elif self.measure in ("r", "f", "m"):
            if not isinstance(self.value, int) or isinstance(self.value, bool) or not 1 <= self.value <= 5:
                raise FieldError("value", N_("RFM scores go from 1 to 5: enter a score in that range."))
        elif isinstance(self.value, (str, bool)) or self.value < 0:
            raise FieldError("value", PYDANTIC_MESSAGES["decimal_parsing"], label=LABELS["value"])
        return self


# --- groups -------------------------------------------------------------------------------------

class AndGroup(_Node):
    """Every condition holds (an empty AND matches every contact)."""

    type: Literal["and"]
    conditions: list[Node] = Field(default_factory=list, max_length=50)


class OrGroup(_Node):
    """At least one condition holds (an empty OR matches no one)."""

    type: Literal["or"]
    conditions: list[Node] = Field(default_factory=list, max_length=50)


class NotGroup(_Node):
    type: Literal["not"]
    condition: Node


Node = Annotated[
    Union[AndGroup, OrGroup, NotGroup, FieldCondition, TagCondition, AttributeCondition, ConsentCondition,
          IdentityCondition, ActivityCondition, CampaignCondition, LastCampaignCondition, OrdersCondition,
          TopSpendersCondition, SurveyCondition, AccountCondition, RfmCondition],
    Field(discriminator="type"),
]
CONDITION_TYPES = ("field", "tag", "attribute", "consent", "identity", "activity", "campaign", "last_campaign",
                   "orders", "top_spenders", "survey", "account", "rfm")

AndGroup.model_rebuild()
OrGroup.model_rebuild()
NotGroup.model_rebuild()


class SegmentDefinition(_Node):
    """The root of a segment: an AND or OR group (nested groups and NOT inside)."""

    type: Literal["and", "or"] = "and"
    conditions: list[Node] = Field(default_factory=list, max_length=50)

    @model_validator(mode="after")
    def _bounded(self) -> SegmentDefinition:
        nodes, depth = _measure(self, 1)
        if depth > MAX_DEPTH:
            raise ValueError(f"groups are nested {depth} deep; at most {MAX_DEPTH} levels are allowed")
        if nodes > MAX_NODES:
            raise ValueError(f"the segment has {nodes} conditions and groups; at most {MAX_NODES} are allowed")
        return self

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_none=True)


def _measure(node: Any, depth: int) -> tuple[int, int]:
    if isinstance(node, (AndGroup, OrGroup, SegmentDefinition)):
        counted = [_measure(child, depth + 1) for child in node.conditions]
        return 1 + sum(c[0] for c in counted), max([depth, *(c[1] for c in counted)])
    if isinstance(node, NotGroup):
        nodes, deepest = _measure(node.condition, depth + 1)
        return 1 + nodes, deepest
    return 1, depth


class InvalidDefinition(ValueError):
    """A definition that does not validate; `errors` lists {field, message, type} with dotted paths
    (what the API answers), `problems` the same as FieldErrors a page shows in its language."""

    def __init__(self, errors: list[dict[str, str]], problems: list[FieldError] | None = None) -> None:
        self.errors = errors
        self.problems = problems or []
        summary = "; ".join(f"{e['field'] or 'definition'}: {e['message']}" for e in errors[:5])
        super().__init__(f"the segment definition is invalid: {summary}")


def parse_definition(data: SegmentDefinition | dict[str, Any] | Any) -> SegmentDefinition:
    """A validated definition from JSON data (or the definition itself); InvalidDefinition otherwise."""
    if isinstance(data, SegmentDefinition):
        return data
    try:
        return SegmentDefinition.model_validate(data)
    except ValidationError as exc:
        errors = definition_errors(exc)
        located = [{**err, "loc": tuple(e["field"].split(".")) if e["field"] else ()}
                   for err, e in zip(exc.errors(), errors, strict=True)]
        raise InvalidDefinition(errors, field_errors(located, LABELS)) from None


# The builder's labels of each setting, naming it in a message a marketer reads.
LABELS = {"value": N_("Value"), "tag": N_("Tag"), "key": N_("Attribute name"), "op": N_("Operator"),
          "currency": N_("Currency"), "percent": N_("Top percent"), "days": N_("Days"),
          "min_count": N_("At least (times)"), "campaign_id": N_("Campaign number"), "metric": N_("Measure"),
          "field": N_("Field"), "type": N_("Condition"), "kind": N_("Event kind, e.g. order.completed"),
          "channel": N_("Channel"), "event": N_("What they did"), "status": N_("Status")}
# Errors that only say an input is still blank: the builder shows them on saving, not while building.
BLANK_TYPES = frozenset({"missing", "string_too_short"})


def definition_errors(exc: ValidationError) -> list[dict[str, str]]:
    """Pydantic's errors as {field, message, type}; discriminator names (tagged-union steps) left out of paths."""
    tags = {"and", "or", "not", *CONDITION_TYPES}
    errors = []
    for err in exc.errors():
        loc: list[str] = []
        previous: Any = None
        for part in err.get("loc", ()):
            # The union's step (conditions.0.<type>.field) names the tag, not a field: leave it out.
            if not (str(part) in tags and (isinstance(previous, int) or previous == "condition")):
                loc.append(str(part))
            previous = part
        message = err.get("msg", "")
        message = message.removeprefix("Value error, ")
        errors.append({"field": ".".join(loc), "message": message, "type": str(err.get("type", ""))})
    return errors
