"""The only contact-center surface other modules may import. Returns contracts, never ORM objects."""

from __future__ import annotations
