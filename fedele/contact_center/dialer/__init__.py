"""The outbound dialer: contact lists, do-not-call, calling windows, pacing, the regulatory meter
and the campaign simulator (pure code; the writes are in ``services.dialer``)."""
