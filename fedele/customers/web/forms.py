from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from fedele.customers.contracts import CustomerKind, Segment


class CustomerForm(forms.Form):
    kind = forms.ChoiceField(
        label=_("Kind"),
        choices=[(CustomerKind.PERSON.value, _("Person")), (CustomerKind.COMPANY.value, _("Company"))],
    )
    first_name = forms.CharField(label=_("First name"), max_length=100, required=False)
    last_name = forms.CharField(label=_("Last name"), max_length=100, required=False)
    company_name = forms.CharField(label=_("Company name"), max_length=200, required=False)
    fiscal_code = forms.CharField(label=_("Fiscal code"), max_length=32, required=False)
    vat_number = forms.CharField(label=_("VAT number"), max_length=32, required=False)
    email = forms.CharField(label=_("E-mail"), max_length=254, required=False)
    phone = forms.CharField(label=_("Phone"), max_length=40, required=False)
    segment = forms.ChoiceField(
        label=_("Segment"),
        choices=[
            (Segment.CONSUMER.value, _("Consumer")),
            (Segment.SMALL_BUSINESS.value, _("Small business")),
            (Segment.ENTERPRISE.value, _("Enterprise")),
            (Segment.PUBLIC_ADMINISTRATION.value, _("Public administration")),
        ],
    )
    language = forms.ChoiceField(label=_("Language"), choices=[("it", "Italiano"), ("en", "English")])
    street = forms.CharField(label=_("Street"), max_length=200, required=False)
    postal_code = forms.CharField(label=_("Postal code"), max_length=16, required=False)
    city = forms.CharField(label=_("City"), max_length=100, required=False)
    province = forms.CharField(label=_("Province"), max_length=2, required=False)
    country = forms.CharField(label=_("Country"), max_length=2, initial="IT")
    pec = forms.CharField(label=_("PEC"), max_length=254, required=False)
    sdi_code = forms.CharField(label=_("SdI code"), max_length=7, required=False)
    notes = forms.CharField(label=_("Notes"), widget=forms.Textarea(attrs={"rows": 3}), required=False)
