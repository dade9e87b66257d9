"""Loyalty back-office pages under /loyalty/ (namespace "loyalty")."""

from __future__ import annotations

from fedele.loyalty.web import evaluation, fraud, members, partners, programmes, rewards, rules

app_name = "loyalty"

urlpatterns = [
    *members.urlpatterns,
    *programmes.urlpatterns,
    *rules.urlpatterns,
    *rewards.urlpatterns,
    *partners.urlpatterns,
    *evaluation.urlpatterns,
    *fraud.urlpatterns,
]
