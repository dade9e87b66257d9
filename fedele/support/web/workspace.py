"""Pages of the agent workspace under /support/: queue and saved views, ticket page, new ticket."""

from __future__ import annotations

from django.urls import URLPattern, URLResolver, path

from fedele.support.web import workspace_new, workspace_queue, workspace_ticket

urlpatterns: list[URLPattern | URLResolver] = [
    path("", workspace_queue.queue, name="queue"),
    path("views/<uuid:public_id>/", workspace_queue.view_detail, name="view_detail"),
    path("views/save/", workspace_queue.view_save, name="view_save"),
    path("bulk/", workspace_queue.queue_bulk, name="queue_bulk"),
    path("tickets/new/", workspace_new.ticket_new, name="ticket_new"),
    path("tickets/customers/", workspace_new.customer_search, name="ticket_customer_search"),
    path("tickets/<uuid:public_id>/", workspace_ticket.ticket_detail, name="ticket_detail"),
    path(
        "tickets/<uuid:public_id>/conversation/",
        workspace_ticket.ticket_conversation,
        name="ticket_conversation",
    ),
    path("tickets/<uuid:public_id>/reply/", workspace_ticket.ticket_reply, name="ticket_reply"),
    path("tickets/<uuid:public_id>/update/", workspace_ticket.ticket_update_view, name="ticket_update"),
    path("tickets/<uuid:public_id>/action/", workspace_ticket.ticket_action, name="ticket_action"),
    path("tickets/<uuid:public_id>/macro/", workspace_ticket.macro_preview, name="ticket_macro_preview"),
    path(
        "tickets/<uuid:public_id>/macro/apply/", workspace_ticket.macro_apply_view, name="ticket_macro_apply"
    ),
    path(
        "tickets/<uuid:public_id>/suggestions/", workspace_ticket.kb_suggestions, name="ticket_kb_suggestions"
    ),
    path("attachments/<uuid:public_id>/", workspace_ticket.attachment_download, name="attachment_download"),
]
