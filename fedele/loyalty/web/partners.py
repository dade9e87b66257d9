"""Loyalty pages: partners."""

from __future__ import annotations

from django.urls import URLPattern

urlpatterns: list[URLPattern] = []
partner_urlpatterns: list[URLPattern] = []
