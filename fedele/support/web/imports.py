"""Ticket import pages under /support/imports/: upload form with the import history, and one import's
counts and line-numbered errors."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import URLPattern, URLResolver, path
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods

from fedele.accounts.facade import Actor, actor_for
from fedele.shared.errors import ApplicationError, PermissionDenied, ValidationFailed
from fedele.support.models import TicketImport
from fedele.support.services import imports as services

HISTORY_SIZE = 50
SOURCES = (("zendesk", "Zendesk"), ("zammad", "Zammad"))
FORMATS = (("json", "JSON"), ("csv", "CSV"))


def _importer(request: HttpRequest) -> Actor:
    actor = actor_for(request.user)
    if not (actor.is_internal and actor.can(services.PERMISSION)):
        raise PermissionDenied(_("You do not have permission to import tickets."))
    return actor


def _row(row: TicketImport) -> dict[str, Any]:
    return {"import": row, "bad": services.bad_ticket_count(row)}


@login_required
@require_http_methods(["GET", "POST"])
def import_page(request: HttpRequest) -> HttpResponse:
    actor = _importer(request)
    values = {"source": "zendesk", "format": "json", "mode": "all_or_none"}
    error = ""
    status = 200
    if request.method == "POST":
        values = {key: str(request.POST.get(key, default)) for key, default in values.items()}
        upload = request.FILES.get("file")
        try:
            if upload is None:
                raise ValidationFailed(_("Choose an export file."), fields={"file": _("Required.")})
            if (upload.size or 0) > services.max_upload_bytes():
                raise ValidationFailed(
                    _("The file is larger than 50 MB: split it, or ask an administrator to use the command."),
                    code="file_too_large",
                )
            result = services.ticket_import(
                actor=actor,
                source=values["source"],
                file_format=values["format"],
                data=upload.read(),
                mode=values["mode"],
            )
        except ApplicationError as failure:
            error, status = failure.message, 422
        else:
            if result.status == TicketImport.Status.DONE:
                messages.success(
                    request,
                    _("%(imported)s tickets imported, %(skipped)s already there, %(bad)s refused.")
                    % {
                        "imported": result.imported,
                        "skipped": result.skipped,
                        "bad": services.bad_ticket_count(result),
                    },
                )
            else:
                messages.error(
                    request, _("Some tickets are wrong, so nothing was imported: see the list below.")
                )
            return redirect("support:import_detail", public_id=result.public_id)
    history = [_row(row) for row in TicketImport.objects.order_by("-id")[:HISTORY_SIZE]]
    context = {
        "values": values,
        "error": error,
        "history": history,
        "sources": SOURCES,
        "formats": FORMATS,
        "max_megabytes": services.max_upload_bytes() // (1024 * 1024),
        "max_rows": services.MAX_ROWS,
    }
    return render(request, "support/imports/page.html", context, status=status)


@login_required
@require_GET
def import_detail(request: HttpRequest, public_id: UUID) -> HttpResponse:
    _importer(request)
    row = TicketImport.objects.filter(public_id=public_id).first()
    if row is None:
        raise Http404(_("Import not found."))
    context = _row(row)
    return render(request, "support/imports/detail.html", {**context, "row": context})


urlpatterns: list[URLPattern | URLResolver] = [
    path("imports/", import_page, name="imports"),
    path("imports/<uuid:public_id>/", import_detail, name="import_detail"),
]
