"""Telephony demo data (after the contact-center demo's queues): voice numbers ringing into the
queues, recording with a consent announcement and 90-day retention on billing, a voicemail box per
queue notifying the supervisor, and two messages waiting in the billing box with their callback
tasks. Idempotent: a second run adds nothing."""

from __future__ import annotations

from datetime import timedelta

from fedele.shared import clock
from fedele.shared.demo import DemoContext

NUMBERS = {"billing": "+390212345670", "technical": "+390212345671", "sales": "+390212345672"}
CALLERS = ["+393331112233", "+393334445566"]


def load(context: DemoContext) -> None:
    from fedele.contact_center.models import Queue, QueueTelephonySettings, VoicemailBox, VoiceNumber
    from fedele.contact_center.services.interactions import interaction_create, interaction_end
    from fedele.contact_center.services.voicemail import voicemail_create
    from fedele.contact_center.telephony.simulator import silent_wav

    queues = {queue.code: queue for queue in Queue.objects.filter(code__in=NUMBERS)}
    if not queues or VoicemailBox.objects.filter(code__startswith="demo-").exists():
        return
    supervisor = context.users.get("supervisor@fedele.demo")
    for code, queue in queues.items():
        VoiceNumber.objects.get_or_create(
            number=NUMBERS[code], defaults={"queue": queue, "provider": "simulator"}
        )
        QueueTelephonySettings.objects.get_or_create(
            queue=queue,
            defaults={
                "record_calls": code == "billing",
                "announce_recording": True,
                "recording_retention_days": 90,
                "voicemail_retention_days": 30,
            },
        )
        box = VoicemailBox.objects.create(code=f"demo-{code}", name=queue.name_en, queue=queue)
        if supervisor is not None:
            box.subscribers.add(supervisor)
    billing = VoicemailBox.objects.filter(code="demo-billing").first()
    if billing is None:
        return
    now = clock.now()
    for index, caller in enumerate(CALLERS):
        at = now - timedelta(hours=3 - index)
        call = interaction_create(
            channel="voice",
            direction="inbound",
            from_address=caller,
            to_address=NUMBERS["billing"],
            provider="simulator",
            provider_ref=f"DEMO-VM-{index + 1}",
            attributes={"demo": True},
            at=at,
        )
        interaction_end(interaction=call, outcome="abandoned", at=at + timedelta(seconds=40))
        voicemail_create(
            interaction=call,
            box=billing,
            provider="simulator",
            provider_ref=f"DEMO-VM-{index + 1}",
            audio=silent_wav(seconds=2),
            duration_seconds=18 + index * 7,
            transcription="Buongiorno, vorrei informazioni sull'ultima fattura. Grazie."
            if index == 0
            else "Salve, ho un addebito che non riconosco, potete richiamarmi?",
            at=at + timedelta(seconds=40),
        )
    context.counts["voicemail messages"] = billing.messages.count()
