"""``manage.py cc_sip_server`` refuses options it cannot work with before binding anything."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"rtp_ports": "20000"}, "--rtp-ports is LOW-HIGH"),
        ({"rtp_ports": "30000-20000"}, "low below high"),
        ({"rtp_ports": "80-2000"}, "within 1024-65535"),
        ({"host": "0.0.0.0"}, "--advertise"),  # noqa: S104 - the refusal under test
        ({"port": 70_000}, "--port must be within"),
        ({"allow": "10.0.0.1,pbx.example"}, "'pbx.example' is not an address"),
    ],
)
def test_bad_options_are_refused(options: dict[str, object], message: str) -> None:
    with pytest.raises(CommandError, match=message):
        call_command("cc_sip_server", **options)
