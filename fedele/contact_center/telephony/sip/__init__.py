"""fedele as a SIP user agent for on-premises PBXs and SIP trunks (see docs/contact-center-sip.md).

``message`` and ``sdp`` speak the protocols, ``rtp`` and ``media`` carry G.711 audio and RFC 4733
DTMF, ``ua`` is the UDP user agent, ``call`` one call's dialog and operations, ``application`` drives
the IVR engine for each call, ``server`` runs it, and ``adapter`` is the ``TelephonyAdapter``
registered as provider ``sip``.
"""

from __future__ import annotations


def register() -> None:
    """Register the SIP adapter with the telephony registry (called at start-up)."""
    from fedele.contact_center.telephony.registry import register_adapter
    from fedele.contact_center.telephony.sip.adapter import sip_adapter

    register_adapter("sip", sip_adapter)
