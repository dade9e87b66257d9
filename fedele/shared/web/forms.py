"""Form helpers shared by every module's web pages: Bootstrap classes and accessible error states."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django import forms
from django.utils.translation import gettext

from fedele.shared.errors import ApplicationError

CHECK_WIDGETS = (forms.CheckboxInput, forms.RadioSelect, forms.CheckboxSelectMultiple)


class BootstrapFormMixin:
    """Gives each widget Bootstrap's class and marks fields with errors for styles and screen readers."""

    fields: dict[str, forms.Field]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for field in self.fields.values():
            widget = field.widget
            if isinstance(widget, CHECK_WIDGETS):
                css = "form-check-input"
            elif isinstance(widget, forms.Select):
                css = "form-select"
            else:
                css = "form-control"
            existing = widget.attrs.get("class", "")
            widget.attrs["class"] = f"{existing} {css}".strip()

    def mark_errors(self) -> None:
        """After validation: add is-invalid and aria-invalid to every field that has an error."""
        errors: dict[str, Any] = getattr(self, "errors", {})
        for name, field in self.fields.items():
            attrs = field.widget.attrs
            if name in errors:
                if "is-invalid" not in attrs.get("class", ""):
                    attrs["class"] = f"{attrs.get('class', '')} is-invalid".strip()
                attrs["aria-invalid"] = "true"
                attrs["aria-describedby"] = f"id_{name}_errors"


def apply_service_errors(
    form: forms.Form, failure: ApplicationError, translate: Callable[[str], str] = gettext
) -> None:
    """A service's ApplicationError onto a form: each message under its field (or the form when the
    field is not on it), in the user's language when the message is a known one."""
    for field, field_messages in failure.fields.items():
        for message in field_messages:
            form.add_error(field if field in form.fields else None, translate(message))
    if not failure.fields:
        form.add_error(None, translate(failure.message))
