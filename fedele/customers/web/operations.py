"""Customer data operations in the web UI: import, duplicates and merge, GDPR export and erasure."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.functional import Promise
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_http_methods, require_POST

from fedele.accounts.facade import actor_for
from fedele.customers import selectors
from fedele.customers.models import Customer, CustomerImport
from fedele.customers.services import gdpr as gdpr_services
from fedele.customers.services import importing as import_services
from fedele.customers.services import merging as merge_services
from fedele.customers.web.forms import KIND_LABELS, STATUS_LABELS, translated_service_message
from fedele.shared.errors import ApplicationError, NotFound, PayloadTooLarge, PermissionDenied
from fedele.shared.web.forms import BootstrapFormMixin, apply_service_errors

MAX_PREVIEW_ROWS = 500
REASON_LABELS: dict[str, Promise] = {
    selectors.REASON_SAME_EMAIL: gettext_lazy("same e-mail"),
    selectors.REASON_SAME_PHONE: gettext_lazy("same phone"),
    selectors.REASON_SAME_FISCAL_CODE: gettext_lazy("same fiscal code"),
    selectors.REASON_SAME_VAT_NUMBER: gettext_lazy("same VAT number"),
    selectors.REASON_SIMILAR_NAME: gettext_lazy("similar name in the same city"),
}
MODE_LABELS: dict[str, Promise] = {
    CustomerImport.Mode.ALL_OR_NOTHING.value: gettext_lazy(
        "All rows or none: import nothing if a row has errors"
    ),
    CustomerImport.Mode.VALID_ROWS.value: gettext_lazy("Only the valid rows: skip the rows with errors"),
}


def _require(request: HttpRequest, permission: str, message: str) -> None:
    if not actor_for(request.user).can(permission):
        raise PermissionDenied(message)


def _field_label(name: str) -> str:
    base = name.split(".")[-1]
    fields = {field.name: field for field in Customer._meta.concrete_fields}
    if base in fields:
        return str(fields[base].verbose_name)
    return str({"file": _("File"), "columns": _("Columns"), "__all__": _("Row")}.get(base, base))


def _failure_messages(failure: ApplicationError) -> list[str]:
    found = [translated_service_message(m) for messages_ in failure.fields.values() for m in messages_]
    return found


# --- import -------------------------------------------------------------------------------------------


class ImportUploadForm(BootstrapFormMixin, forms.Form):
    file = forms.FileField(
        label=gettext_lazy("File (CSV or Excel .xlsx)"),
        widget=forms.ClearableFileInput(attrs={"accept": ".csv,.xlsx,text/csv"}),
    )


def _preview_rows(customer_import: CustomerImport, only_errors: bool) -> list[dict[str, Any]]:
    rows = [row for row in customer_import.rows if not (only_errors and row.get("valid"))]
    return [
        {
            **row,
            "error_list": [
                (_field_label(field), [translated_service_message(m) for m in field_messages])
                for field, field_messages in row.get("errors", {}).items()
            ],
        }
        for row in rows[:MAX_PREVIEW_ROWS]
    ]


def _render_import(
    request: HttpRequest,
    *,
    form: ImportUploadForm | None = None,
    customer_import: CustomerImport | None = None,
    failure: ApplicationError | None = None,
    status: int = 200,
) -> HttpResponse:
    only_errors = request.GET.get("errors") == "1"
    columns: list[tuple[str, str]] = []
    if customer_import is not None:
        names: list[str] = []
        for row in customer_import.rows:
            for name in row.get("values", {}):
                if name not in names:
                    names.append(name)
        columns = [(name, _field_label(name)) for name in names]
    context = {
        "form": form or ImportUploadForm(),
        "customer_import": customer_import,
        "rows": _preview_rows(customer_import, only_errors) if customer_import else [],
        "columns": columns,
        "only_errors": only_errors,
        "max_rows": MAX_PREVIEW_ROWS,
        "invalid_rows": customer_import.total_rows - customer_import.valid_rows if customer_import else 0,
        "modes": list(MODE_LABELS.items()),
        "failure": failure,
        "failure_message": translated_service_message(failure.message) if failure else "",
        "failure_details": _failure_messages(failure) if failure else [],
        "max_upload_mb": settings.FEDELE_MAX_UPLOAD_BYTES // (1024 * 1024),
    }
    return render(request, "customers/operations/import.html", context, status=status)


@login_required
@require_http_methods(["GET", "POST"])
def customer_import(request: HttpRequest) -> HttpResponse:
    """Upload -> preview with line numbers and errors -> choose the mode -> commit."""
    _require(request, "customers.import_customers", _("You do not have permission to import customers."))
    actor = actor_for(request.user)
    if request.method == "POST" and request.POST.get("action") == "commit":
        customer_import = selectors.customer_import_get(
            actor=actor, public_id=_uuid_or_404(request.POST.get("import_id", ""))
        )
        try:
            customer_import = import_services.customer_import_commit(
                actor=actor,
                import_public_id=str(customer_import.public_id),
                mode=request.POST.get("mode", ""),
            )
        except ApplicationError as failure:
            if isinstance(failure, (NotFound, PermissionDenied)):
                raise
            return _render_import(request, customer_import=customer_import, failure=failure, status=422)
        messages.success(
            request,
            _("%(count)s customers have been imported.") % {"count": customer_import.created_count},
        )
        return redirect(f"{reverse('customers:import')}?import={customer_import.public_id}")
    if request.method == "POST":
        form = ImportUploadForm(request.POST, request.FILES)
        if not form.is_valid():
            form.mark_errors()
            return _render_import(request, form=form, status=422)
        upload = form.cleaned_data["file"]
        try:
            if upload.size > settings.FEDELE_MAX_UPLOAD_BYTES:
                raise PayloadTooLarge(
                    f"The file is too large (limit {settings.FEDELE_MAX_UPLOAD_BYTES} bytes).",
                    code="file_too_large",
                )
            customer_import = import_services.customer_import_preview(
                actor=actor, filename=upload.name, content=upload.read()
            )
        except ApplicationError as failure:
            if isinstance(failure, PermissionDenied):
                raise
            form.add_error("file", translated_service_message(failure.message))
            form.mark_errors()
            return _render_import(request, form=form, failure=failure, status=failure.status_code)
        return redirect(f"{reverse('customers:import')}?import={customer_import.public_id}")
    import_id = request.GET.get("import", "")
    if import_id:
        customer_import = selectors.customer_import_get(actor=actor, public_id=_uuid_or_404(import_id))
        return _render_import(request, customer_import=customer_import)
    return _render_import(request)


def _uuid_or_404(value: str) -> str:
    try:
        return str(UUID(str(value)))
    except ValueError as error:
        raise NotFound(_("Not found.")) from error


# --- duplicates and merge -----------------------------------------------------------------------------


@login_required
def customer_duplicates(request: HttpRequest, public_id: UUID) -> HttpResponse:
    actor = actor_for(request.user)
    customer = selectors.customer_get(actor=actor, public_id=str(public_id))
    candidates = selectors.customer_find_duplicates(actor=actor, customer_public_id=str(public_id))
    rows = [
        {
            "candidate": candidate,
            "reasons": [str(REASON_LABELS.get(reason, reason)) for reason in candidate.reasons],
            "kind_label": KIND_LABELS.get(candidate.customer.kind, candidate.customer.kind),
        }
        for candidate in candidates
    ]
    return render(
        request,
        "customers/operations/duplicates.html",
        {
            "customer": customer,
            "rows": rows,
            "is_active": customer.status == "active",
            "status_label": STATUS_LABELS.get(customer.status, customer.status),
        },
    )


@login_required
@require_POST
def customer_merge(request: HttpRequest, public_id: UUID) -> HttpResponse:
    """Merge the posted duplicate_id into this customer, which survives."""
    actor = actor_for(request.user)
    duplicate_id = request.POST.get("duplicate_id", "")
    try:
        duplicate_uuid = str(UUID(duplicate_id))
    except ValueError:
        messages.error(request, _("Choose the duplicate to merge."))
        return redirect(reverse("customers:duplicates", args=[public_id]), status=303)
    try:
        survivor = merge_services.customers_merge(
            actor=actor, survivor_public_id=str(public_id), duplicate_public_id=duplicate_uuid
        )
    except ApplicationError as failure:
        if isinstance(failure, (NotFound, PermissionDenied)):
            raise
        messages.error(request, translated_service_message(failure.message))
        return redirect(reverse("customers:duplicates", args=[public_id]))
    messages.success(
        request, _("The duplicate has been merged into %(number)s.") % {"number": survivor.number}
    )
    return redirect(reverse("customers:detail", args=[survivor.public_id]))


# --- GDPR -----------------------------------------------------------------------------------------------


@login_required
@require_http_methods(["GET"])
def customer_personal_data(request: HttpRequest, public_id: UUID) -> HttpResponse:
    actor = actor_for(request.user)
    content = gdpr_services.customer_export_personal_data(actor=actor, customer_public_id=str(public_id))
    number = selectors.customer_get(actor=actor, public_id=str(public_id)).number
    response = HttpResponse(content, content_type="application/zip")
    response["Content-Disposition"] = f'attachment; filename="personal-data-{number}.zip"'
    response["Cache-Control"] = "no-store"
    return response


class EraseForm(BootstrapFormMixin, forms.Form):
    reason = forms.CharField(
        label=gettext_lazy("Reason"),
        max_length=gdpr_services.MAX_REASON_LENGTH,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=gettext_lazy("For example: request of the data subject received on 3 March by e-mail."),
    )
    confirm = forms.CharField(label=gettext_lazy("Customer number"), max_length=32)

    def __init__(self, *args: Any, number: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.number = number
        self.fields["confirm"].help_text = _("Type %(number)s to confirm.") % {"number": number}

    def clean_confirm(self) -> str:
        value = str(self.cleaned_data.get("confirm", "")).strip()
        if value != self.number:
            raise forms.ValidationError(_("Type %(number)s to confirm.") % {"number": self.number})
        return value


@login_required
@require_http_methods(["GET", "POST"])
def customer_erase(request: HttpRequest, public_id: UUID) -> HttpResponse:
    """GET: the confirmation page. POST: erase (the reason and the typed customer number are required)."""
    actor = actor_for(request.user)
    customer = selectors.customer_get(actor=actor, public_id=str(public_id))
    _require(
        request, "customers.erase_personal_data", _("You do not have permission to erase personal data.")
    )
    if customer.status == "erased":
        messages.info(request, _("This customer's personal data has already been erased."))
        return redirect(reverse("customers:detail", args=[customer.public_id]))
    form = EraseForm(request.POST or None, number=customer.number)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                gdpr_services.customer_erase(
                    actor=actor,
                    customer_public_id=str(customer.public_id),
                    reason=form.cleaned_data["reason"],
                )
            except ApplicationError as failure:
                if isinstance(failure, (NotFound, PermissionDenied)):
                    raise
                apply_service_errors(form, failure, translated_service_message)
            else:
                messages.success(
                    request,
                    _("The personal data of %(number)s has been erased.") % {"number": customer.number},
                )
                return redirect(reverse("customers:detail", args=[customer.public_id]))
        status = 422
        form.mark_errors()
    return render(
        request, "customers/operations/erase.html", {"customer": customer, "form": form}, status=status
    )
