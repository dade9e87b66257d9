"""Error messages the services raise in English, listed so that makemessages puts them in the catalogue.

Error templates show an ApplicationError's message with {% translate error.message %}: a message
listed here appears in the user's language, any other one as the service wrote it.
"""

from __future__ import annotations

from django.utils.translation import gettext_noop

SERVICE_MESSAGES = (
    gettext_noop("Customer not found."),
    gettext_noop("Contact not found."),
    gettext_noop("User not found."),
    gettext_noop("Token not found."),
    gettext_noop("Webhook delivery not found."),
    gettext_noop("Webhook endpoint not found."),
    gettext_noop("You do not have permission for this action."),
    gettext_noop("You do not have permission to manage users."),
    gettext_noop("You do not have permission to manage webhooks."),
    gettext_noop("You cannot deactivate your own account."),
    gettext_noop("Consent can only be recorded for an active customer."),
    gettext_noop("Some fields are not valid."),
    gettext_noop("The cursor is not valid."),
    gettext_noop("The cursor belongs to another ordering."),
    gettext_noop("Unknown fields."),
    gettext_noop("Invalid preferences."),
    gettext_noop("Too many failed sign-in attempts. Try again later."),
    gettext_noop("The request body is too large."),
    gettext_noop("Already in use."),
    gettext_noop("A user with this e-mail already exists."),
    gettext_noop("A team with this name exists."),
    gettext_noop("A user needs at least one role."),
    gettext_noop("Choose at least one role."),
    gettext_noop("The password is too weak."),
    gettext_noop("Teams are made of active staff only."),
    gettext_noop("Only active staff can be members."),
)

# Titles the customers module writes on its own 360 timeline entries.
TIMELINE_TITLES = (
    gettext_noop("Customer created"),
    gettext_noop("Consent updated"),
    gettext_noop("Duplicate merged into this customer"),
)
