"""Forms of the member portal (/club/). They parse; the club services validate and decide."""

from __future__ import annotations

from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from fedele.shared.web.forms import BootstrapFormMixin

LANGUAGE_CHOICES = [("it", "Italiano"), ("en", "English")]


class DateInput(forms.DateInput):
    input_type = "date"

    def __init__(self, attrs: dict[str, Any] | None = None) -> None:
        super().__init__(attrs=attrs, format="%Y-%m-%d")


class EnrolForm(BootstrapFormMixin, forms.Form):
    programme = forms.ChoiceField(label=_("Programme"), widget=forms.RadioSelect)
    birthday = forms.DateField(
        label=_("Birthday"),
        required=False,
        widget=DateInput(attrs={"autocomplete": "bday"}),
        help_text=_("Optional: we will give you a present on your birthday."),
    )
    referral_code = forms.CharField(
        label=_("Referral code"),
        required=False,
        max_length=16,
        help_text=_("If a friend invited you, their code is already here."),
        widget=forms.TextInput(attrs={"autocapitalize": "characters", "autocomplete": "off"}),
    )
    accept_terms = forms.BooleanField(label=_("I accept the programme terms and conditions."), required=True)

    def __init__(self, *args: Any, programmes: list[tuple[str, str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["programme"]
        assert isinstance(field, forms.ChoiceField)
        field.choices = programmes
        if len(programmes) == 1:
            field.widget = forms.HiddenInput()
            field.initial = programmes[0][0]


class PreferencesForm(BootstrapFormMixin, forms.Form):
    language = forms.ChoiceField(
        label=_("Language of our messages"),
        choices=LANGUAGE_CHOICES,
    )
    birthday = forms.DateField(
        label=_("Birthday"),
        required=False,
        widget=DateInput(attrs={"autocomplete": "bday"}),
        help_text=_("You can set it once."),
    )
    email_marketing = forms.BooleanField(
        label=_("Offers and news of the programme by e-mail"), required=False
    )
    sms_marketing = forms.BooleanField(label=_("Offers and news of the programme by SMS"), required=False)

    def __init__(self, *args: Any, birthday_locked: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for name in ("email_marketing", "sms_marketing"):
            self.fields[name].widget.attrs.update({"role": "switch"})
        if birthday_locked:
            field = self.fields["birthday"]
            field.disabled = True
            field.help_text = _("Already set. To correct it, contact us.")


class RedeemForm(BootstrapFormMixin, forms.Form):
    """The confirmation step. ``idempotency_key`` is made when the page is shown: submitting the same
    page twice sends the same key, so the reward is redeemed once."""

    idempotency_key = forms.CharField(widget=forms.HiddenInput, max_length=64)
    shipping_name = forms.CharField(label=_("Name and surname"), required=False, max_length=120)
    shipping_street = forms.CharField(label=_("Street and number"), required=False, max_length=200)
    shipping_postcode = forms.CharField(label=_("Postcode"), required=False, max_length=12)
    shipping_city = forms.CharField(label=_("City"), required=False, max_length=80)
    shipping_province = forms.CharField(label=_("Province"), required=False, max_length=40)
    shipping_country = forms.CharField(label=_("Country (2 letters)"), required=False, max_length=2)
    shipping_phone = forms.CharField(
        label=_("Phone for the courier"),
        required=False,
        max_length=30,
        widget=forms.TextInput(attrs={"type": "tel"}),
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        autocomplete = {
            "shipping_name": "name",
            "shipping_street": "street-address",
            "shipping_postcode": "postal-code",
            "shipping_city": "address-level2",
            "shipping_province": "address-level1",
            "shipping_country": "country",
            "shipping_phone": "tel",
        }
        for name, value in autocomplete.items():
            self.fields[name].widget.attrs["autocomplete"] = value

    def address(self) -> dict[str, str]:
        """The address parts as the rewards service names them (name, street, postcode...)."""
        data = getattr(self, "cleaned_data", {})
        return {
            name.removeprefix("shipping_"): str(data.get(name) or "")
            for name in self.fields
            if name.startswith("shipping_")
        }


class HouseholdCreateForm(BootstrapFormMixin, forms.Form):
    name = forms.CharField(
        label=_("Household name"),
        max_length=120,
        help_text=_("For example your family name: the members you invite will see it."),
    )


class HouseholdTransferForm(BootstrapFormMixin, forms.Form):
    """Points to a household member. ``idempotency_key`` is made when the page is shown: the same page
    submitted twice transfers once."""

    idempotency_key = forms.CharField(widget=forms.HiddenInput, max_length=64)
    to_member = forms.ChoiceField(label=_("To"))
    points = forms.IntegerField(
        label=_("Points"), min_value=1, widget=forms.NumberInput(attrs={"inputmode": "numeric"})
    )

    def __init__(self, *args: Any, recipients: list[tuple[str, str]], max_points: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["to_member"]
        assert isinstance(field, forms.ChoiceField)
        field.choices = recipients
        if max_points > 0:
            self.fields["points"].widget.attrs["max"] = str(max_points)


def service_fields_to_form(fields: dict[str, list[str]]) -> dict[str, list[str]]:
    """The rewards service names address errors ``shipping_address.<part>``; the form ``shipping_<part>``."""
    return {
        (
            f"shipping_{name.removeprefix('shipping_address.')}"
            if name.startswith("shipping_address.")
            else name
        ): value
        for name, value in fields.items()
    }
