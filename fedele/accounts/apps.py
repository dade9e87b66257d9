from __future__ import annotations

from typing import Any

from django.apps import AppConfig
from django.db.models.signals import post_migrate


class AccountsConfig(AppConfig):
    name = "fedele.accounts"
    label = "accounts"
    verbose_name = "Accounts"

    def ready(self) -> None:
        post_migrate.connect(_sync_roles, dispatch_uid="fedele.accounts.sync_roles")
        from django.utils.translation import gettext_lazy as _

        from fedele.accounts import demo as accounts_demo
        from fedele.accounts import services as _services  # noqa: F401  (connects the token cache's bumps)
        from fedele.shared import demo, navigation
        from fedele.shared.navigation import NavItem

        demo.register("accounts", accounts_demo.load, order=10)
        for email, roles, _first, _last in accounts_demo.DEMO_USERS:
            demo.register_login(email, ", ".join(roles))
        navigation.register("settings", NavItem(_("Profile"), "accounts:profile"))
        navigation.register("settings", NavItem(_("Users"), "accounts:user_list", "accounts.manage_users"))
        navigation.register("settings", NavItem(_("Teams"), "accounts:team_list", "accounts.manage_users"))
        navigation.register("settings", NavItem(_("Webhooks"), "webhooks:list", "shared.manage_webhooks"))
        navigation.register("settings", NavItem(_("Audit log"), "audit:list", "shared.view_audit"))


def _sync_roles(sender: AppConfig, **kwargs: Any) -> None:
    # Permissions of every app exist only after its own post_migrate: sync after the last one.
    from django.apps import apps

    if sender.label != list(apps.get_app_configs())[-1].label:
        return
    from fedele.accounts.services import roles_sync

    roles_sync(using=kwargs.get("using", "default"))
