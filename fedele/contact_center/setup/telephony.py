"""What the telephony area registers at start-up: the voice adapters, its Celery tasks, the
retention job and navigation."""

from __future__ import annotations


def register() -> None:
    from django.utils.translation import gettext_lazy as _

    import fedele.contact_center.telephony.tasks  # noqa: F401  (registers the media and retention tasks)
    from fedele.contact_center.telephony import demo, sip
    from fedele.contact_center.telephony.registry import register_adapter
    from fedele.contact_center.telephony.simulator import simulator
    from fedele.contact_center.telephony.twilio import TwilioAdapter
    from fedele.shared import demo as demo_registry
    from fedele.shared import navigation, scheduler
    from fedele.shared.navigation import NavItem

    register_adapter("twilio", TwilioAdapter)
    demo_registry.register("contact_center_telephony", demo.load, order=310)
    register_adapter("simulator", simulator)
    sip.register()  # the SIP user agent's adapter (telephony/sip/, helper S)
    scheduler.register("contact-center-recordings-retention", "contact_center.recordings_purge_expired", 3600)
    scheduler.register("contact-center-media-fetch-due", "contact_center.media_fetch_due", 300)
    navigation.register(
        "contact_center",
        NavItem(_("Voicemail"), "contact_center:voicemail-boxes", "contact_center.view_interaction"),
    )
    navigation.register(
        "contact_center",
        NavItem(_("Voice settings"), "contact_center:voice-settings", "contact_center.manage_contact_center"),
    )
