"""Form helpers shared by every module's web pages: Bootstrap classes and accessible error states."""

from __future__ import annotations

from typing import Any

from django import forms

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
