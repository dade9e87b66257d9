"""Notifications reach the user's websocket only after the transaction commits."""

from __future__ import annotations

import pytest
from asgiref.sync import async_to_sync
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import AnonymousUser
from django.db import transaction

from config.routing import websocket_urlpatterns
from fedele.accounts.tests.factories import user_with_roles
from fedele.shared import notifications
from fedele.shared.models import Notification


def _application():  # type: ignore[no-untyped-def]
    from channels.routing import URLRouter

    return URLRouter(websocket_urlpatterns)


@pytest.mark.django_db(transaction=True)
def test_notification_is_pushed_to_the_recipients_socket_after_commit() -> None:
    user = user_with_roles("agent")

    async def scenario() -> dict[str, object]:
        communicator = WebsocketCommunicator(_application(), "/ws/notifications/")
        communicator.scope["user"] = user
        connected, _ = await communicator.connect()
        assert connected
        from asgiref.sync import sync_to_async

        await sync_to_async(notifications.notification_create)(
            recipient_id=user.pk, title="Ticket T-000001 assigned", link="/tickets/1/"
        )
        message = await communicator.receive_json_from(timeout=2)
        await communicator.disconnect()
        return message

    message = async_to_sync(scenario)()
    assert message["type"] == "notification"
    assert message["title"] == "Ticket T-000001 assigned"
    assert message["link"] == "/tickets/1/"
    assert notifications.unread_count(recipient_id=user.pk) == 1


@pytest.mark.django_db(transaction=True)
def test_rolled_back_notification_is_neither_stored_nor_pushed() -> None:
    user = user_with_roles("agent")

    async def scenario() -> bool:
        communicator = WebsocketCommunicator(_application(), "/ws/notifications/")
        communicator.scope["user"] = user
        await communicator.connect()
        from asgiref.sync import sync_to_async

        def create_then_fail() -> None:
            try:
                with transaction.atomic():
                    notifications.notification_create(recipient_id=user.pk, title="never")
                    raise RuntimeError("rollback")
            except RuntimeError:
                pass

        await sync_to_async(create_then_fail)()
        nothing = await communicator.receive_nothing(timeout=0.3)
        await communicator.disconnect()
        return bool(nothing)

    assert async_to_sync(scenario)() is True
    assert Notification.objects.count() == 0


@pytest.mark.django_db(transaction=True)
def test_anonymous_socket_is_refused() -> None:
    async def scenario() -> bool:
        communicator = WebsocketCommunicator(_application(), "/ws/notifications/")
        communicator.scope["user"] = AnonymousUser()
        connected, _code = await communicator.connect()
        return bool(connected)

    assert async_to_sync(scenario)() is False


@pytest.mark.django_db
def test_mark_all_read_clears_only_the_recipients_notifications() -> None:
    first = user_with_roles("agent")
    second = user_with_roles("agent")
    notifications.notification_create(recipient_id=first.pk, title="a")
    notifications.notification_create(recipient_id=first.pk, title="b")
    notifications.notification_create(recipient_id=second.pk, title="c")
    assert notifications.mark_all_read(recipient_id=first.pk) == 2
    assert notifications.unread_count(recipient_id=first.pk) == 0
    assert notifications.unread_count(recipient_id=second.pk) == 1
