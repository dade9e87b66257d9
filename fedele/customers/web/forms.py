"""The customer form and the labels the customer pages show for stored codes."""

from __future__ import annotations

import re

from django import forms
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from fedele.customers.contracts import ConsentChannel, ConsentPurpose, CustomerKind, CustomerStatus, Segment
from fedele.shared.web.forms import BootstrapFormMixin

KIND_LABELS: dict[str, Promise] = {
    CustomerKind.PERSON.value: _("Person"),
    CustomerKind.COMPANY.value: _("Company"),
}
SEGMENT_LABELS: dict[str, Promise] = {
    Segment.CONSUMER.value: _("Consumer"),
    Segment.SMALL_BUSINESS.value: _("Small business"),
    Segment.ENTERPRISE.value: _("Enterprise"),
    Segment.PUBLIC_ADMINISTRATION.value: _("Public administration"),
}
STATUS_LABELS: dict[str, Promise] = {
    CustomerStatus.ACTIVE.value: _("Active"),
    CustomerStatus.MERGED.value: _("Merged"),
    CustomerStatus.ERASED.value: _("Erased"),
}
STATUS_BADGES = {
    CustomerStatus.ACTIVE.value: "success",
    CustomerStatus.MERGED.value: "secondary",
    CustomerStatus.ERASED.value: "dark",
}
CHANNEL_LABELS: dict[str, Promise] = {
    ConsentChannel.EMAIL.value: _("E-mail"),
    ConsentChannel.SMS.value: _("SMS"),
    ConsentChannel.PHONE.value: _("Phone"),
    ConsentChannel.POST.value: _("Post"),
    ConsentChannel.PUSH.value: _("Push"),
    ConsentChannel.WHATSAPP.value: _("WhatsApp"),
}
PURPOSE_LABELS: dict[str, Promise] = {
    ConsentPurpose.SERVICE.value: _("Service"),
    ConsentPurpose.MARKETING.value: _("Marketing"),
    ConsentPurpose.PROFILING.value: _("Profiling"),
    ConsentPurpose.THIRD_PARTY.value: _("Third parties"),
}
LANGUAGE_CHOICES = [("it", "Italiano"), ("en", "English")]

# Shown for one kind only; the fiscal code, contacts and address belong to both.
PERSON_ONLY_FIELDS = ("first_name", "last_name")
COMPANY_ONLY_FIELDS = ("company_name", "vat_number", "pec", "sdi_code")

# The services speak English; the form shows their messages in the user's language.
_SERVICE_MESSAGES: list[tuple[re.Pattern[str], Promise]] = [
    (
        re.compile(r"^'(?P<value>.*)' is not a valid e-mail address\.$"),
        _("'%(value)s' is not a valid e-mail address."),
    ),
    (re.compile(r"^'(?P<value>.*)' is not a phone number\.$"), _("'%(value)s' is not a phone number.")),
    (
        re.compile(r"^'(?P<value>.*)' is not a valid phone number\.$"),
        _("'%(value)s' is not a valid phone number."),
    ),
    (
        re.compile(r"^'(?P<value>.*)' is not a valid Italian fiscal code\.$"),
        _("'%(value)s' is not a valid Italian fiscal code."),
    ),
    (
        re.compile(r"^'(?P<value>.*)' does not start with an EU country code\.$"),
        _("'%(value)s' does not start with an EU country code."),
    ),
    (
        re.compile(r"^'(?P<value>.*)' is not a valid VAT number\.$"),
        _("'%(value)s' is not a valid VAT number."),
    ),
    (re.compile(r"^At most (?P<value>\d+) characters\.$"), _("At most %(value)s characters.")),
    (
        re.compile(r"^An Italian province is two letters \(e\.g\. MI\)\.$"),
        _("An Italian province is two letters (e.g. MI)."),
    ),
    (
        re.compile(r"^An Italian postal code \(CAP\) has five digits\.$"),
        _("An Italian postal code (CAP) has five digits."),
    ),
    (
        re.compile(r"^Use a two-letter ISO country code \(e\.g\. IT\)\.$"),
        _("Use a two-letter ISO country code (e.g. IT)."),
    ),
    (
        re.compile(r"^The SdI recipient code has 6 or 7 letters and digits\.$"),
        _("The SdI recipient code has 6 or 7 letters and digits."),
    ),
    (re.compile(r"^A person needs a first or last name\.$"), _("A person needs a first or last name.")),
    (re.compile(r"^A company needs a name\.$"), _("A company needs a name.")),
    (
        re.compile(r"^An Italian company needs a VAT number or fiscal code\.$"),
        _("An Italian company needs a VAT number or fiscal code."),
    ),
    (re.compile(r"^Already used by another customer\.$"), _("Already used by another customer.")),
    (
        re.compile(r"^Another customer already uses this e-mail address\.$"),
        _("Another customer already uses this e-mail address."),
    ),
    (re.compile(r"^The birth date is in the future\.$"), _("The birth date is in the future.")),
    (re.compile(r"^Some fields are not valid\.$"), _("Some fields are not valid.")),
]


def translated_service_message(message: str) -> str:
    """A service error message in the active language, or unchanged when it is not a known one."""
    for pattern, template in _SERVICE_MESSAGES:
        match = pattern.match(message)
        if match:
            values = match.groupdict()
            return str(template) % values if values else str(template)
    return message


class CustomerForm(BootstrapFormMixin, forms.Form):
    kind = forms.ChoiceField(
        label=_("Kind"),
        choices=list(KIND_LABELS.items()),
        widget=forms.RadioSelect,
        initial=CustomerKind.PERSON.value,
    )
    first_name = forms.CharField(
        label=_("First name"),
        max_length=100,
        required=False,
        widget=forms.TextInput(attrs={"autocomplete": "given-name"}),
    )
    last_name = forms.CharField(
        label=_("Last name"),
        max_length=100,
        required=False,
        widget=forms.TextInput(attrs={"autocomplete": "family-name"}),
    )
    company_name = forms.CharField(
        label=_("Company name"),
        max_length=200,
        required=False,
        widget=forms.TextInput(attrs={"autocomplete": "organization"}),
    )
    fiscal_code = forms.CharField(
        label=_("Fiscal code"),
        max_length=32,
        required=False,
        widget=forms.TextInput(attrs={"autocapitalize": "characters", "spellcheck": "false"}),
    )
    vat_number = forms.CharField(
        label=_("VAT number"),
        max_length=32,
        required=False,
        widget=forms.TextInput(attrs={"autocapitalize": "characters", "spellcheck": "false"}),
    )
    email = forms.CharField(
        label=_("E-mail"),
        max_length=254,
        required=False,
        widget=forms.EmailInput(attrs={"autocomplete": "email"}),
    )
    phone = forms.CharField(
        label=_("Phone"),
        max_length=40,
        required=False,
        widget=forms.TextInput(attrs={"type": "tel", "autocomplete": "tel", "inputmode": "tel"}),
    )
    segment = forms.ChoiceField(label=_("Segment"), choices=list(SEGMENT_LABELS.items()))
    language = forms.ChoiceField(label=_("Language"), choices=LANGUAGE_CHOICES)
    street = forms.CharField(
        label=_("Street"),
        max_length=200,
        required=False,
        widget=forms.TextInput(attrs={"autocomplete": "address-line1"}),
    )
    postal_code = forms.CharField(
        label=_("Postal code"),
        max_length=16,
        required=False,
        widget=forms.TextInput(attrs={"autocomplete": "postal-code", "inputmode": "numeric"}),
    )
    city = forms.CharField(
        label=_("City"),
        max_length=100,
        required=False,
        widget=forms.TextInput(attrs={"autocomplete": "address-level2"}),
    )
    province = forms.CharField(
        label=_("Province"),
        max_length=2,
        required=False,
        widget=forms.TextInput(attrs={"autocapitalize": "characters", "placeholder": "RM"}),
    )
    country = forms.CharField(
        label=_("Country"),
        max_length=2,
        initial="IT",
        widget=forms.TextInput(attrs={"autocapitalize": "characters", "autocomplete": "country"}),
    )
    pec = forms.CharField(
        label=_("PEC"),
        max_length=254,
        required=False,
        help_text=_("Certified e-mail address, for electronic invoices."),
        widget=forms.EmailInput(),
    )
    sdi_code = forms.CharField(
        label=_("SdI code"),
        max_length=7,
        required=False,
        help_text=_("Recipient code of the Exchange System (6 or 7 characters)."),
        widget=forms.TextInput(attrs={"autocapitalize": "characters"}),
    )
    notes = forms.CharField(label=_("Notes"), widget=forms.Textarea(attrs={"rows": 3}), required=False)

    def service_data(self) -> dict[str, object]:
        """The cleaned values for the service, without the other kind's fields (hidden in the page)."""
        data = dict(self.cleaned_data)
        hidden = COMPANY_ONLY_FIELDS if data.get("kind") == CustomerKind.PERSON.value else PERSON_ONLY_FIELDS
        for name in hidden:
            data[name] = ""
        return data
