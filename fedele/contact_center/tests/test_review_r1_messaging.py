"""Review R1 — SMS/social and web chat: a burst of messages from one sender, delivered at once, makes
one conversation; the chat transcript e-mail shows the times in Italy's local time."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from fedele.contact_center.models import Interaction, InteractionMessage, MessagingChannel, MessagingReceipt
from fedele.contact_center.services import sms_social
from fedele.contact_center.tests.factories import QueueFactory

pytestmark = pytest.mark.django_db

MOBILE = "+393331234567"
OUR_NUMBER = "+390212345678"
T0 = datetime.fromisoformat("2026-03-29T03:15:00+02:00")


@pytest.fixture(autouse=True)
def _environment(settings: Any) -> None:
    settings.CONTACT_CENTER_ROUTE_ON_COMMIT = False


@pytest.fixture
def sms_channel() -> MessagingChannel:
    return MessagingChannel.objects.create(
        code="sms-it",
        name="SMS",
        kind="twilio",
        network="sms",
        address=OUR_NUMBER,
        queue=QueueFactory(code="messages", channels=["sms"]),
        secret_env="CC_TEST_TWILIO_TOKEN",
        created_at=T0,
    )


def _sms(body: str, sid: str) -> dict[str, str]:
    return {"MessageSid": sid, "From": MOBILE, "To": OUR_NUMBER, "Body": body, "NumMedia": "0"}


@pytest.mark.parametrize("text", ["Stop!", "STOP.", "annulla!!", " Cancella . "])
def test_an_opt_out_keyword_with_punctuation_is_still_an_opt_out(
    sms_channel: MessagingChannel, text: str
) -> None:
    from fedele.contact_center.models import MessagingOptOut

    result = sms_social.receive(sms_channel, sms_social.parse_twilio(_sms(text, "SM-PUNCT")))
    assert (result.kind, result.duplicate, result.interaction) == ("opt_out", False, None)
    assert list(MessagingOptOut.objects.values_list("network", "address")) == [("sms", MOBILE)]
    assert Interaction.objects.count() == 0


def test_a_sentence_ending_in_stop_is_still_a_message(sms_channel: MessagingChannel) -> None:
    from fedele.contact_center.models import MessagingOptOut

    result = sms_social.receive(sms_channel, sms_social.parse_twilio(_sms("Non funziona lo stop!", "SM-S")))
    assert result.kind == "message"
    assert MessagingOptOut.objects.count() == 0


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_eight_messages_of_one_sender_at_once_open_one_conversation(sms_channel: MessagingChannel) -> None:
    from fedele.shared.testing import in_threads

    errors = in_threads(
        lambda index: sms_social.receive(
            sms_channel, sms_social.parse_twilio(_sms(f"Parte {index}", f"SM-BURST-{index}"))
        ),
        8,
    )
    assert errors == []
    assert Interaction.objects.count() == 1
    interaction = Interaction.objects.get()
    assert InteractionMessage.objects.filter(interaction=interaction).count() == 8
    assert set(MessagingReceipt.objects.values_list("interaction_id", flat=True)) == {interaction.pk}


# --- web chat: the transcript e-mail ------------------------------------------------------------------


def test_the_transcript_email_shows_the_times_in_italian_local_time(
    django_capture_on_commit_callbacks: Any,
) -> None:
    from django.core import mail

    from fedele.contact_center.models import AgentState, ChatWidget
    from fedele.contact_center.services import chat
    from fedele.contact_center.tests.factories import AgentFactory

    queue = QueueFactory(code="web")
    AgentFactory(state=AgentState.AVAILABLE).queues.add(queue)
    widget = ChatWidget.objects.create(
        name="Sito", queue=queue, allowed_origins=["https://www.example.it"], created_at=T0
    )
    summer = datetime.fromisoformat("2026-07-15T10:05:00+00:00")  # 12:05 in Rome (CEST)
    winter = datetime.fromisoformat("2026-12-01T22:59:00+00:00")  # 23:59 in Rome (CET)
    started = chat.chat_start(
        widget=widget,
        name="Mario Bianchi",
        email="mario@example.it",
        consent=True,
        message="Buongiorno, l'ordine?",
        language="it",
        at=summer,
    )
    assert started.session is not None
    chat.chat_visitor_message(session=started.session, body="Ci siete?", at=winter)
    with django_capture_on_commit_callbacks(execute=True):
        chat.chat_end(session=started.session, transcript_to="mario@example.it", at=winter)
    (email,) = mail.outbox
    assert "[15/07/2026 12:05] " in email.body
    assert "[01/12/2026 23:59] " in email.body
    assert "2026-07-15T10:05" not in email.body and "2026-12-01T22:59" not in email.body
    assert "Buongiorno, l'ordine?" in email.body


def test_an_upload_to_a_chat_ended_meanwhile_is_refused_and_stores_nothing(
    tmp_path: Any, settings: Any
) -> None:
    from fedele.contact_center.models import AgentState, ChatSession, ChatWidget
    from fedele.contact_center.services import chat
    from fedele.contact_center.tests.factories import AgentFactory
    from fedele.shared.errors import Conflict

    settings.MEDIA_ROOT = tmp_path
    queue = QueueFactory(code="web")
    AgentFactory(state=AgentState.AVAILABLE).queues.add(queue)
    widget = ChatWidget.objects.create(
        name="Sito", queue=queue, allowed_origins=["https://www.example.it"], created_at=T0
    )
    started = chat.chat_start(
        widget=widget, name="Mario", email="mario@example.it", consent=True, language="it", at=T0
    )
    session = started.session
    assert session is not None
    # The visitor's other tab (or the agent) ends the chat; this request still holds the session it read.
    chat.chat_end(session=ChatSession.objects.get(pk=session.pk), at=T0)
    with pytest.raises(Conflict) as refused:
        chat.chat_visitor_upload(session=session, filename="nota.txt", content=b"ciao\n", at=T0)
    assert refused.value.code == "chat_ended"
    assert InteractionMessage.objects.filter(interaction=session.interaction).count() == 0
    assert [path for path in tmp_path.rglob("*") if path.is_file()] == []  # the saved file was deleted
