"""The segment builder's form: a definition tree flattened into named fields and back, and its edits.

Every node of the tree has a path ("r" is the root group, "r.0" its first child, "r.0.1" …) and its
settings travel as form fields named `n:<path>:<setting>`. The page posts the whole form on every
change, the server rebuilds the tree from it (`tree_from_form`), applies an edit when a button asked
for one (`apply_action`: add a condition or a group, wrap in NOT, remove), and renders it again. No
custom JavaScript is needed: htmx posts the form, and the tree lives only in the form.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable
from datetime import datetime, time
from typing import Any
from zoneinfo import ZoneInfo

from hub.web.i18n import N_

MAX_FORM_NODES = 150
GROUPS = ("and", "or", "not")
DEFAULT_CONDITION: dict[str, Any] = {"type": "field", "field": "locale", "op": "eq", "value": "ru"}

# What the builder offers, with labels (translated where they are shown).
CONDITION_LABELS = {
    "field": N_("Contact field"), "tag": N_("Tag"), "attribute": N_("Attribute"), "consent": N_("Consent"),
    "identity": N_("Email or phone"), "activity": N_("Timeline activity"), "campaign": N_("Campaign engagement"),
    "last_campaign": N_("Reply to the last campaign"), "orders": N_("Orders"),
    "top_spenders": N_("Top spenders (RFM)"), "survey": N_("Survey score"), "account": N_("Account (company)"), "rfm": N_("RFM score"),
}
ACCOUNT_FIELD_LABELS = {"any": N_("Has an account"), "is_key": N_("Key account"), "name": N_("Account name"),
                        "kind": N_("Account kind"), "owner_id": N_("Key-account manager (user id)"),
                        "profit_band": N_("Profit band"), "temperature": N_("Temperature (0–100)"),
                        "attribute": N_("Account attribute")}
ACCOUNT_OPS = {"any": ("is_set", "is_empty"), "is_key": ("eq",), "name": ("contains", "eq"), "kind": ("eq", "ne"),
               "owner_id": ("eq", "ne", "is_set", "is_empty"), "profit_band": ("eq", "ne", "in", "not_in"),
               "temperature": ("lt", "lte", "gt", "gte", "is_set", "is_empty"),
               "attribute": ("eq", "contains", "exists")}
PROFIT_BAND_LABELS = {"top": N_("top 20% by profit"), "profitable": N_("profitable"),
                      "break_even": N_("breaks even"), "loss": N_("loses money")}
ACCOUNT_KIND_LABELS = {"company": N_("Company"), "household": N_("Household")}
GROUP_LABELS = {"and": N_("All of these (AND)"), "or": N_("Any of these (OR)"), "not": N_("None of this (NOT)")}
FIELD_LABELS = {"display_name": N_("Name"), "locale": N_("Language"), "time_zone": N_("Time zone"),
                "lifecycle_stage": N_("Lifecycle stage"), "owner_id": N_("Owner (user id)"),
                "created_at": N_("Created")}
OP_LABELS = {
    "eq": N_("is"), "ne": N_("is not"), "in": N_("is one of"), "not_in": N_("is none of"), "contains": N_("contains"),
    "is_set": N_("is set"), "is_empty": N_("is empty"), "before": N_("before"), "after": N_("after"),
    "within_days": N_("in the last N days"), "older_than_days": N_("more than N days ago"),
    "exists": N_("exists"), "not_exists": N_("does not exist"), "gt": N_("more than"), "gte": N_("at least"),
    "lt": N_("less than"), "lte": N_("at most"), "has": N_("has"), "has_not": N_("does not have"),
}
CONSENT_LABELS = {"granted": N_("granted"), "withdrawn": N_("withdrawn"), "none": N_("never asked")}
CAMPAIGN_EVENT_LABELS = {"received": N_("received"), "opened": N_("opened"), "clicked": N_("clicked"),
                         "unsubscribed": N_("unsubscribed from"), "replied": N_("replied to"),
                         "opened_not_clicked": N_("opened but did not click")}
ORDER_METRIC_LABELS = {"count": N_("Number of orders"), "total": N_("Total spent"),
                       "days_since_last": N_("Days since the last order")}
DIRECTION_LABELS = {"": N_("any direction"), "in": N_("from the contact"), "out": N_("to the contact"),
                    "internal": N_("internal")}
VALUE_KIND_LABELS = {"text": N_("text"), "number": N_("number"), "bool": N_("yes / no")}
COMPARISONS = ("eq", "ne", "gt", "gte", "lt", "lte")
RFM_MEASURE_LABELS = {"cell": N_("RFM cell"), "r": N_("Recency score (1–5)"), "f": N_("Frequency score (1–5)"),
                      "m": N_("Monetary score (1–5)"), "lifetime_value": N_("Lifetime value so far"),
                      "predicted_value": N_("Predicted value")}
RFM_CELL_LABELS = {"champions": N_("Champions"), "loyal": N_("Loyal"), "potential_loyalists": N_("Potential loyalists"),
                   "new": N_("New customers"), "promising": N_("Promising"), "need_attention": N_("Need attention"),
                   "about_to_sleep": N_("About to sleep"), "at_risk": N_("At risk"), "cant_lose": N_("Can't lose them"),
                   "hibernating": N_("Hibernating"), "lost": N_("Lost")}
FIELD_OPS = {
    "display_name": ("eq", "ne", "contains", "is_set", "is_empty"),
    "locale": ("eq", "ne", "in", "not_in", "is_set", "is_empty"),
    "time_zone": ("eq", "ne", "in", "not_in", "is_set", "is_empty"),
    "lifecycle_stage": ("eq", "ne", "in", "not_in"),
    "owner_id": ("eq", "ne", "is_set", "is_empty"),
    "created_at": ("within_days", "older_than_days", "before", "after"),
}
ATTRIBUTE_OPS = ("eq", "ne", "contains", "exists", "not_exists", "gt", "gte", "lt", "lte")
_PATH = re.compile(r"^r(\.\d{1,3}){0,8}$")


def _children(nodes: dict[str, dict[str, str]], path: str) -> list[str]:
    depth = path.count(".") + 1
    found = [p for p in nodes if p.startswith(path + ".") and p.count(".") == depth]
    return sorted(found, key=lambda p: int(p.rsplit(".", 1)[1]))


def tree_from_form(items: Iterable[tuple[str, Any]], *, tz: ZoneInfo) -> dict[str, Any]:
    """The definition tree the form describes (values converted where the type is certain)."""
    nodes: dict[str, dict[str, str]] = {}
    for key, value in items:
        if not isinstance(key, str) or not key.startswith("n:") or not isinstance(value, str):
            continue
        _, path, setting = (key.split(":", 2) + ["", ""])[:3]
        if not _PATH.match(path) or not setting:
            continue
        if path not in nodes and len(nodes) >= MAX_FORM_NODES:
            continue
        nodes.setdefault(path, {})[setting] = value.strip()

    def build(path: str) -> dict[str, Any]:
        raw = nodes.get(path, {})
        kind = raw.get("type") or "and"
        children = _children(nodes, path)
        if kind in ("and", "or"):
            return {"type": kind, "conditions": [build(c) for c in children]}
        if kind == "not":
            return {"type": "not", "condition": build(children[0]) if children else dict(DEFAULT_CONDITION)}
        return condition_from_raw(kind, _unless_reshaped(raw), tz=tz)

    tree = build("r")
    if tree["type"] not in ("and", "or"):
        tree = {"type": "and", "conditions": [tree]}
    return tree


def shape_of(node: dict[str, Any]) -> str:
    """What a condition's settings belong to: its kind, and for a contact field which field."""
    if node.get("type") in ("field", "account"):
        return f"{node.get('type')}:{node.get('field')}"
    return str(node.get("type"))


def _unless_reshaped(raw: dict[str, str]) -> dict[str, str]:
    """A condition whose kind (or contact field) was just changed starts blank: the settings the
    form still carries belong to the old one ("ru" of a Language condition is no order total)."""
    shape = raw.get("shape")
    if shape is None or shape == shape_of(raw):
        return raw
    kind = raw.get("type") or ""
    return {"type": kind, "field": raw.get("field", "")} if shape.startswith(f"{kind}:") else {"type": kind}


def _int(value: str | None) -> Any:
    if value is None or value == "":
        return None
    try:
        return int(value)
    except ValueError:
        return value  # the validation names the field and says a whole number is needed


def _number(value: str | None) -> Any:
    if value is None or value == "":
        return None
    text = value.replace(",", ".").replace(" ", "")
    try:
        return int(text)
    except ValueError:
        return text  # the definition's Decimal fields read "12.50"; anything else is refused there


def condition_from_raw(kind: str, raw: dict[str, str], *, tz: ZoneInfo) -> dict[str, Any]:
    """One condition from its form fields; unknown kinds are kept so validation can name them."""
    get = raw.get
    if kind == "field":
        field = get("field") or "locale"
        op = get("op") or FIELD_OPS.get(field, ("eq",))[0]
        node: dict[str, Any] = {"type": "field", "field": field, "op": op}
        value = get("value", "")
        if op in ("is_set", "is_empty"):
            return node
        if op in ("in", "not_in"):
            node["value"] = [v.strip() for v in value.split(",") if v.strip()]
        elif op in ("within_days", "older_than_days") or field == "owner_id":
            node["value"] = _int(value)
        elif op in ("before", "after"):
            node["value"] = _day_start(value, tz)
        else:
            node["value"] = value
        return node
    if kind == "tag":
        return {"type": "tag", "op": get("op") or "has", "tag": get("tag", "")}
    if kind == "attribute":
        op, value_kind, value = get("op") or "eq", get("value_kind") or "text", get("value", "")
        node = {"type": "attribute", "key": get("key", ""), "op": op, "value_kind": value_kind}
        if op not in ("exists", "not_exists"):
            if op in ("gt", "gte", "lt", "lte") or value_kind == "number":
                node["value"] = _number(value)
            elif value_kind == "bool":
                node["value"] = value.lower() in ("1", "true", "yes", "да")
            else:
                node["value"] = value
        return node
    if kind == "consent":
        return {"type": "consent", "channel": get("channel") or "email", "purpose": get("purpose") or "marketing",
                "status": get("status") or "granted"}
    if kind == "identity":
        return {"type": "identity", "kind": get("kind") or "email", "has": get("has", "yes") != "no"}
    if kind == "activity":
        node = {"type": "activity", "kind": get("kind") or None, "channel": get("channel") or None,
                "direction": get("direction") or None, "days": _int(get("days")),
                "min_count": _int(get("min_count")) or 1}
        return node
    if kind == "campaign":
        return {"type": "campaign", "campaign_id": _int(get("campaign_id")), "event": get("event") or "received"}
    if kind == "last_campaign":
        return {"type": "last_campaign", "replied": get("replied", "no") == "yes"}
    if kind == "orders":
        metric = get("metric") or "count"
        node = {"type": "orders", "metric": metric, "op": get("op") or "gte", "value": _number(get("value"))}
        if metric == "total":
            node["currency"] = (get("currency") or "").upper() or None
        return node
    if kind == "top_spenders":
        return {"type": "top_spenders", "percent": _int(get("percent")), "currency": (get("currency") or "").upper()}
    if kind == "account":
        return _account_from_raw(raw)
    if kind == "rfm":
        measure = get("measure") or "cell"
        if measure == "cell":
            return {"type": "rfm", "measure": measure, "op": get("op") if get("op") in ("eq", "ne") else "eq",
                    "value": get("value") or "champions"}
        return {"type": "rfm", "measure": measure, "op": get("op") or "gte",
                "value": _int(get("value")) if measure in ("r", "f", "m") else _number(get("value"))}
    if kind == "survey":
        return {"type": "survey", "metric": get("metric") or "nps", "op": get("op") or "lte",
                "value": _int(get("value"))}
    return {"type": kind}


def _account_from_raw(raw: dict[str, str]) -> dict[str, Any]:
    field = raw.get("field") or "is_key"
    op = raw.get("op") or ACCOUNT_OPS.get(field, ("eq",))[0]
    node: dict[str, Any] = {"type": "account", "field": field, "op": op}
    if field == "attribute":
        node["key"] = raw.get("key", "")
    if op in ("is_set", "is_empty", "exists"):
        return node
    value = raw.get("value", "")
    if field == "is_key":
        node["value"] = value != "false"
    elif field in ("owner_id", "temperature"):
        node["value"] = _int(value)
    elif op in ("in", "not_in"):
        node["value"] = [v.strip() for v in value.split(",") if v.strip()]
    else:
        node["value"] = value or ("top" if field == "profit_band" else "company" if field == "kind" else "")
    return node


def _day_start(value: str, tz: ZoneInfo) -> Any:
    """A date picked in the form as the start of that day in the marketer's time zone (ISO text)."""
    try:
        day = datetime.strptime(value, "%Y-%m-%d").date()
    except ValueError:
        return value
    return datetime.combine(day, time(0), tzinfo=tz).isoformat()


def definition_of(tree: dict[str, Any]) -> dict[str, Any]:
    """The tree without the builder's own hints (value_kind, empty optional settings)."""
    node = {k: v for k, v in tree.items() if k != "value_kind" and v is not None}
    if "conditions" in node:
        node["conditions"] = [definition_of(c) for c in node["conditions"]]
    if "condition" in node:
        node["condition"] = definition_of(node["condition"])
    return node


def tree_for_editing(definition: dict[str, Any]) -> dict[str, Any]:
    """A stored definition with the builder's hints filled in (an attribute's value kind)."""
    node = copy.deepcopy(definition)
    if node.get("type") == "attribute" and "value" in node:
        value = node["value"]
        node["value_kind"] = "bool" if isinstance(value, bool) else "number" if isinstance(value, (int, float)) or (
            isinstance(value, str) and node.get("op") in ("gt", "gte", "lt", "lte")) else "text"
    for child in node.get("conditions", []):
        child.update(tree_for_editing(child))
    if "condition" in node:
        node["condition"] = tree_for_editing(node["condition"])
    return node


def _locate(tree: dict[str, Any], path: str) -> tuple[dict[str, Any] | None, Any, dict[str, Any] | None]:
    """(parent, key in the parent, node) for a path; (None, None, tree) for the root."""
    parts = path.split(".")[1:]
    parent, key, node = None, None, tree
    for part in parts:
        index = int(part)
        if node.get("type") in ("and", "or") and index < len(node.get("conditions", [])):
            parent, key, node = node, index, node["conditions"][index]
        elif node.get("type") == "not" and index == 0:
            parent, key, node = node, "condition", node["condition"]
        else:
            return None, None, None
    return parent, key, node


def apply_action(tree: dict[str, Any], action: str) -> dict[str, Any]:
    """One edit: add-condition:<path>, add-group:<path>, not:<path>, unwrap:<path>, remove:<path>."""
    verb, _, path = action.partition(":")
    if not _PATH.match(path):
        return tree
    tree = copy.deepcopy(tree)
    parent, key, node = _locate(tree, path)
    if node is None:
        return tree
    if verb in ("add-condition", "add-group") and node.get("type") in ("and", "or"):
        if len(node["conditions"]) < 50:
            new = dict(DEFAULT_CONDITION) if verb == "add-condition" else {
                "type": "or" if node["type"] == "and" else "and", "conditions": [dict(DEFAULT_CONDITION)]}
            node["conditions"].append(new)
    elif verb == "not" and parent is not None:
        wrapped = {"type": "not", "condition": node}
        if key == "condition":
            parent["condition"] = wrapped
        else:
            parent["conditions"][key] = wrapped
    elif verb == "unwrap" and node.get("type") == "not":
        inner = node["condition"]
        if parent is None:
            return tree
        if key == "condition":
            parent["condition"] = inner
        else:
            parent["conditions"][key] = inner
    elif verb == "remove" and parent is not None:
        if key == "condition":  # removing NOT's only child removes the NOT
            grand, grand_key, _ = _locate(tree, path.rsplit(".", 1)[0])
            if grand is not None and grand_key != "condition":
                del grand["conditions"][grand_key]
        else:
            del parent["conditions"][key]
    return tree


def error_paths(errors: list[dict[str, str]]) -> dict[str, list[str]]:
    """Validation errors by builder path ("conditions.0.condition.value" -> "r.0.0")."""
    found: dict[str, list[str]] = {}
    for error in errors:
        path = "r"
        parts = [p for p in (error.get("field") or "").split(".") if p]
        i = 0
        while i < len(parts):
            if parts[i] == "conditions" and i + 1 < len(parts) and parts[i + 1].isdigit():
                path += f".{parts[i + 1]}"
                i += 2
            elif parts[i] == "condition":
                path += ".0"
                i += 1
            else:
                i += 1
        found.setdefault(path, []).append(error.get("message", ""))
    return found
