"""The e-mail channel of support: parsing, threading, the LMTP/SMTP receiver, IMAP polling, bounces.

The services that write (``services/email_inbound.py``, ``services/email_outbound.py``,
``services/mailboxes.py``) use these helpers; nothing here writes to the database by itself except the
receiver and the poller, which call the inbound service.
"""
