"""In-app notifications for staff and portal users, pushed live over the user's channel group."""

from __future__ import annotations

from django.db import transaction
from django.db.models import QuerySet

from fedele.shared import clock, realtime
from fedele.shared.models import Notification


def notification_create(
    *, recipient_id: int, title: str, body: str = "", link: str = "", level: str = "info"
) -> Notification:
    with transaction.atomic():
        notification = Notification.objects.create(
            recipient_id=recipient_id,
            title=title[:200],
            body=body,
            link=link[:500],
            level=level,
            created_at=clock.now(),
        )
        realtime.notify_group(
            realtime.group_for_user(recipient_id),
            "notification.new",
            {"id": str(notification.public_id), "title": notification.title, "link": notification.link},
        )
    return notification


def notification_list(
    *, recipient_id: int, unread_only: bool = False, limit: int = 20
) -> QuerySet[Notification]:
    queryset = Notification.objects.filter(recipient_id=recipient_id)
    if unread_only:
        queryset = queryset.filter(read_at__isnull=True)
    return queryset.order_by("-created_at", "-id")[:limit]


def unread_count(*, recipient_id: int) -> int:
    return Notification.objects.filter(recipient_id=recipient_id, read_at__isnull=True).count()


def mark_all_read(*, recipient_id: int) -> int:
    return Notification.objects.filter(recipient_id=recipient_id, read_at__isnull=True).update(
        read_at=clock.now()
    )
