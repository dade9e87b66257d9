"""Settings of the desktop area (contact_center.manage_contact_center): canned replies."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import URLPattern, URLResolver, path
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from fedele.accounts.facade import Actor, actor_for
from fedele.contact_center.models import CannedReply, Queue
from fedele.contact_center.services.desktop import canned_reply_delete, canned_reply_save
from fedele.contact_center.web.desktop_common import errors_of
from fedele.shared.errors import ApplicationError, PermissionDenied

MANAGE = "contact_center.manage_contact_center"


def manager(request: HttpRequest) -> Actor:
    actor = actor_for(request.user)
    if not (actor.is_internal and actor.can(MANAGE)):
        raise PermissionDenied(_("You may not configure the contact center."))
    return actor


@login_required
@require_GET
def canned_reply_list(request: HttpRequest) -> HttpResponse:
    manager(request)
    replies = CannedReply.objects.select_related("queue").order_by("shortcut")
    return render(request, "contact_center/desktop/canned_list.html", {"replies": replies})


@login_required
@require_http_methods(["GET", "POST"])
def canned_reply_edit(request: HttpRequest, pk: int | None = None) -> HttpResponse:
    actor = manager(request)
    reply = get_object_or_404(CannedReply, pk=pk) if pk is not None else None
    errors: dict[str, list[str]] = {}
    values = {
        "shortcut": reply.shortcut if reply else "",
        "title": reply.title if reply else "",
        "body_it": reply.body_it if reply else "",
        "body_en": reply.body_en if reply else "",
        "queue": reply.queue.code if reply and reply.queue else "",
        "active": reply.active if reply else True,
    }
    if request.method == "POST":
        values = {
            "shortcut": request.POST.get("shortcut", ""),
            "title": request.POST.get("title", ""),
            "body_it": request.POST.get("body_it", ""),
            "body_en": request.POST.get("body_en", ""),
            "queue": request.POST.get("queue", ""),
            "active": request.POST.get("active") == "on",
        }
        try:
            canned_reply_save(
                shortcut=str(values["shortcut"]),
                title=str(values["title"]),
                body_it=str(values["body_it"]),
                body_en=str(values["body_en"]),
                queue_code=str(values["queue"]),
                active=bool(values["active"]),
                reply=reply,
                actor_id=actor.user_id,
            )
        except ApplicationError as error:
            errors = errors_of(error)
        else:
            messages.success(request, _("Canned reply saved."))
            return redirect("contact_center:canned_reply_list")
    context = {"reply": reply, "values": values, "errors": errors, "queues": Queue.objects.order_by("code")}
    return render(request, "contact_center/desktop/canned_form.html", context, status=422 if errors else 200)


@login_required
@require_POST
def canned_reply_remove(request: HttpRequest, pk: int) -> HttpResponse:
    actor = manager(request)
    canned_reply_delete(reply=get_object_or_404(CannedReply, pk=pk), actor_id=actor.user_id)
    messages.success(request, _("Canned reply deleted."))
    return redirect("contact_center:canned_reply_list")


urlpatterns: list[URLPattern | URLResolver] = [
    path("settings/canned-replies/", canned_reply_list, name="canned_reply_list"),
    path("settings/canned-replies/new/", canned_reply_edit, name="canned_reply_new"),
    path("settings/canned-replies/<int:pk>/", canned_reply_edit, name="canned_reply_edit"),
    path("settings/canned-replies/<int:pk>/delete/", canned_reply_remove, name="canned_reply_delete"),
]
