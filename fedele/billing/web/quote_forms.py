"""The quote editor's form: header fields and a variable list of lines, added and removed with htmx.

Line fields are named ``lines-<n>-<field>``; ``n`` only keeps a row's fields together (rows removed
in the browser leave gaps), the order on the page is the order of the lines.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from django.http import QueryDict
from django.utils.translation import gettext as _

from fedele.billing.models import PlanVersion, Product, Quote
from fedele.billing.services.quote_pricing import LineInput

LINE_KEY = re.compile(r"^lines-(\d{1,4})-item$")
MAX_ROWS = 200


@dataclass
class LineRow:
    """One editor row as typed (strings), so a form with errors is shown back unchanged."""

    index: int
    item: str = ""
    quantity: str = "1"
    unit_amount: str = ""
    discount_percent: str = "0"
    description: str = ""


@dataclass
class QuoteForm:
    customer: str = ""
    currency: str = "EUR"
    valid_until: str = ""
    language: str = "it"
    discount_percent: str = "0"
    notes: str = ""
    rows: list[LineRow] = field(default_factory=list)
    errors: dict[str, list[str]] = field(default_factory=dict)

    def add_error(self, name: str, message: str) -> None:
        self.errors.setdefault(name, []).append(message)


def item_options(currency: str) -> list[tuple[str, str]]:
    """What a line can sell: published versions of active plans in the currency, active products."""
    from fedele.billing.selectors.catalog import sellable_versions

    options = [
        (f"plan:{v.pk}", f"{v.plan.name} v{v.version} ({v.currency}, {v.plan.billing_period})")
        for v in sellable_versions(currency=currency or None)
    ]
    options += [(f"product:{p.pk}", p.name) for p in Product.objects.filter(is_active=True).order_by("name")]
    return options


def form_from_post(data: QueryDict) -> QuoteForm:
    form = QuoteForm(
        customer=data.get("customer", "").strip()[:64],
        currency=data.get("currency", "EUR").strip().upper()[:3],
        valid_until=data.get("valid_until", "").strip()[:10],
        language=data.get("language", "it") if data.get("language") in ("it", "en") else "it",
        discount_percent=data.get("discount_percent", "0").strip()[:12] or "0",
        notes=data.get("notes", "")[:5000],
    )
    indices = sorted({int(m.group(1)) for key in data if (m := LINE_KEY.match(key))})
    for index in indices[:MAX_ROWS]:
        prefix = f"lines-{index}-"
        form.rows.append(
            LineRow(
                index=index,
                item=data.get(prefix + "item", "").strip()[:40],
                quantity=data.get(prefix + "quantity", "1").strip()[:20] or "1",
                unit_amount=data.get(prefix + "unit_amount", "").strip()[:20],
                discount_percent=data.get(prefix + "discount_percent", "0").strip()[:12] or "0",
                description=data.get(prefix + "description", "").strip()[:300],
            )
        )
    return form


def form_from_quote(quote: Quote) -> QuoteForm:
    rows = []
    for position, line in enumerate(quote.lines.exclude(kind="setup_fee").order_by("position", "id")):
        item = f"plan:{line.plan_version_id}" if line.plan_version_id else f"product:{line.product_id}"
        # A plan line keeps an override only when it differs from the price book's unit price.
        override = line.kind == "product" or line.unit_amount != line.list_unit_amount
        rows.append(
            LineRow(
                index=position,
                item=item,
                quantity=_text(line.quantity),
                unit_amount=_text(line.unit_amount) if override else "",
                discount_percent=_text(line.discount_percent),
                description=line.description,
            )
        )
    return QuoteForm(
        customer=str(quote.account.customer.public_id),
        currency=quote.currency,
        valid_until=quote.valid_until.isoformat(),
        language=quote.language,
        discount_percent=_text(quote.discount_percent),
        notes=quote.notes,
        rows=rows,
    )


def _text(value: Decimal) -> str:
    normalized = value.normalize()
    return (
        f"{normalized:f}" if normalized != normalized.to_integral_value() else f"{value.quantize(Decimal(1))}"
    )


def _decimal(form: QuoteForm, name: str, text: str) -> Decimal | None:
    try:
        value = Decimal(text.replace(",", "."))
    except InvalidOperation:
        form.add_error(name, _("Enter a number."))
        return None
    if not value.is_finite():
        form.add_error(name, _("Enter a number."))
        return None
    return value


def parse_valid_until(form: QuoteForm) -> date | None:
    try:
        return date.fromisoformat(form.valid_until)
    except ValueError:
        form.add_error("valid_until", _("Enter a date."))
        return None


def parse_discount(form: QuoteForm) -> Decimal:
    return _decimal(form, "discount_percent", form.discount_percent) or Decimal(0)


def parse_lines(form: QuoteForm) -> list[LineInput]:
    """The rows as service input; unknown items and unreadable numbers are added to ``form.errors``
    under ``lines[<position>].<field>``, the names the pricing service uses for its own errors."""
    plan_ids = [int(r.item[5:]) for r in form.rows if r.item.startswith("plan:") and r.item[5:].isdigit()]
    product_ids = [
        int(r.item[8:]) for r in form.rows if r.item.startswith("product:") and r.item[8:].isdigit()
    ]
    versions = PlanVersion.objects.select_related("plan", "plan__product").in_bulk(plan_ids)
    products = Product.objects.in_bulk(product_ids)
    lines = []
    if not form.rows:
        form.add_error("lines", _("Add at least one line."))
    for position, row in enumerate(form.rows):
        prefix = f"lines[{position}]"
        kind, _sep, key = row.item.partition(":")
        version = versions.get(int(key)) if kind == "plan" and key.isdigit() else None
        product = products.get(int(key)) if kind == "product" and key.isdigit() else None
        if version is None and product is None:
            form.add_error(prefix, _("Choose a plan or a product."))
            continue
        quantity = _decimal(form, f"{prefix}.quantity", row.quantity)
        discount = _decimal(form, f"{prefix}.discount_percent", row.discount_percent)
        unit = _decimal(form, f"{prefix}.unit_amount", row.unit_amount) if row.unit_amount else None
        if quantity is None or discount is None or (row.unit_amount and unit is None):
            continue
        lines.append(
            LineInput(
                plan_version=version,
                product=product,
                quantity=quantity,
                unit_amount=unit,
                discount_percent=discount,
                description=row.description,
            )
        )
    return lines


def row_errors(form: QuoteForm) -> dict[int, list[str]]:
    """Errors per row (by the row's position) for showing them next to the row."""
    result: dict[int, list[str]] = {}
    for key, messages in form.errors.items():
        match = re.match(r"^lines\[(\d+)\]", key)
        if match:
            field_name = key[match.end() + 1 :]
            result.setdefault(int(match.group(1)), []).extend(
                f"{field_name}: {m}" if field_name else m for m in messages
            )
    return result


def context(form: QuoteForm) -> dict[str, Any]:
    errors = row_errors(form)
    return {
        "form": form,
        "rows": [(row, errors.get(position, [])) for position, row in enumerate(form.rows)],
        "next_index": max((row.index for row in form.rows), default=-1) + 1,
        "options": item_options(form.currency),
        "general_errors": {k: v for k, v in form.errors.items() if not k.startswith("lines[")},
    }
