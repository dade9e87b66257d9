"""Forms of the field service pages. Dates and times are typed in Europe/Rome local time; the forms turn
them into aware datetimes (the services store UTC)."""

from __future__ import annotations

from datetime import date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

from django import forms
from django.utils.translation import gettext_lazy as _

from fedele.field_service.models import KIND_LABELS, PRIORITY_LABELS
from fedele.shared.web.forms import BootstrapFormMixin

ROME = ZoneInfo("Europe/Rome")


def local_moment(day: date | None, clock_time: time | None) -> datetime | None:
    if day is None or clock_time is None:
        return None
    return datetime.combine(day, clock_time, tzinfo=ROME)


def _date_input() -> forms.DateInput:
    return forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")


def _time_input() -> forms.TimeInput:
    return forms.TimeInput(attrs={"type": "time", "step": 900}, format="%H:%M")


class WorkOrderCreateForm(BootstrapFormMixin, forms.Form):
    customer = forms.CharField(
        label=_("Customer"),
        max_length=64,
        help_text=_("The customer number (C-000123) or the customer's id."),
    )
    summary = forms.CharField(label=_("Summary"), max_length=200)
    description = forms.CharField(
        label=_("Description"), required=False, widget=forms.Textarea(attrs={"rows": 3})
    )
    kind = forms.ChoiceField(label=_("Kind"), choices=list(KIND_LABELS.items()), initial="repair")
    priority = forms.ChoiceField(label=_("Priority"), choices=list(PRIORITY_LABELS.items()), initial="normal")
    equipment = forms.ChoiceField(label=_("Equipment"), required=False)
    ticket = forms.UUIDField(label=_("Support ticket"), required=False, help_text=_("Optional: its id."))
    day = forms.DateField(label=_("Day"), required=False, widget=_date_input())
    start_time = forms.TimeField(label=_("From"), required=False, widget=_time_input())
    end_time = forms.TimeField(label=_("To"), required=False, widget=_time_input())
    technician = forms.ChoiceField(label=_("Technician"), required=False)

    def __init__(
        self,
        *args: Any,
        equipment_choices: list[tuple[str, str]] | None = None,
        technician_choices: list[tuple[str, str]] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        equipment_field: Any = self.fields["equipment"]
        equipment_field.choices = [("", _("None")), *(equipment_choices or [])]
        technician_field: Any = self.fields["technician"]
        technician_field.choices = [("", _("Not assigned yet")), *(technician_choices or [])]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        given = [name for name in ("day", "start_time", "end_time") if data.get(name)]
        if given and len(given) < 3:
            for name in ("day", "start_time", "end_time"):
                if not data.get(name):
                    self.add_error(name, _("Give the day, the start and the end of the window."))
        return data

    def window(self) -> tuple[datetime | None, datetime | None]:
        data = self.cleaned_data
        return (
            local_moment(data.get("day"), data.get("start_time")),
            local_moment(data.get("day"), data.get("end_time")),
        )


class EquipmentForm(BootstrapFormMixin, forms.Form):
    customer = forms.CharField(
        label=_("Customer"),
        max_length=64,
        help_text=_("The customer number (C-000123) or the customer's id."),
    )
    serial_number = forms.CharField(label=_("Serial number"), max_length=100)
    name = forms.CharField(
        label=_("Name"), max_length=200, help_text=_("e.g. Caldaia Vaillant ecoTEC plus 25")
    )
    category = forms.CharField(label=_("Category"), max_length=40, required=False, help_text=_("e.g. boiler"))
    manufacturer = forms.CharField(label=_("Manufacturer"), max_length=100, required=False)
    model_code = forms.CharField(label=_("Model code"), max_length=100, required=False)
    installed_on = forms.DateField(label=_("Installed on"), required=False, widget=_date_input())
    warranty_months = forms.IntegerField(
        label=_("Warranty (months)"), required=False, min_value=0, max_value=600
    )
    warranty_ends_on = forms.DateField(
        label=_("Warranty ends on"),
        required=False,
        widget=_date_input(),
        help_text=_("Or the warranty length in months."),
    )
    site_street = forms.CharField(label=_("Street"), max_length=200, required=False)
    site_postal_code = forms.CharField(label=_("Postal code"), max_length=16, required=False)
    site_city = forms.CharField(label=_("City"), max_length=100, required=False)
    site_province = forms.CharField(label=_("Province"), max_length=2, required=False)
    notes = forms.CharField(label=_("Notes"), required=False, widget=forms.Textarea(attrs={"rows": 3}))


class TechnicianForm(BootstrapFormMixin, forms.Form):
    display_name = forms.CharField(label=_("Name"), max_length=150)
    phone = forms.CharField(label=_("Phone"), max_length=30, required=False)
    email = forms.EmailField(label=_("E-mail"), required=False)
    home_base_address = forms.CharField(label=_("Home base"), max_length=300, required=False)
