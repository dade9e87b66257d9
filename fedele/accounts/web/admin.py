"""User and team administration pages (permission accounts.manage_users)."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_http_methods

from fedele.accounts import services
from fedele.accounts.models import Team, User
from fedele.accounts.web.views import ROLE_LABELS
from fedele.shared.errors import ApplicationError
from fedele.shared.web.forms import BootstrapFormMixin, apply_service_errors

ROLE_CHOICES = [(value, label) for value, label in ROLE_LABELS.items()]


class UserCreateForm(BootstrapFormMixin, forms.Form):
    email = forms.EmailField(label=gettext_lazy("E-mail"), max_length=254)
    first_name = forms.CharField(label=gettext_lazy("First name"), max_length=150, required=False)
    last_name = forms.CharField(label=gettext_lazy("Last name"), max_length=150, required=False)
    language = forms.ChoiceField(
        label=gettext_lazy("Language"), choices=[("it", "Italiano"), ("en", "English")]
    )
    roles = forms.MultipleChoiceField(
        label=gettext_lazy("Roles"), choices=ROLE_CHOICES, widget=forms.CheckboxSelectMultiple
    )
    password = forms.CharField(
        label=gettext_lazy("First password"),
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        max_length=200,
        help_text=gettext_lazy("At least 10 characters; the user can change it after signing in."),
    )


class UserEditForm(BootstrapFormMixin, forms.Form):
    roles = forms.MultipleChoiceField(
        label=gettext_lazy("Roles"), choices=ROLE_CHOICES, widget=forms.CheckboxSelectMultiple
    )
    is_active = forms.BooleanField(label=gettext_lazy("Can sign in"), required=False)


class TeamForm(BootstrapFormMixin, forms.Form):
    name = forms.CharField(label=gettext_lazy("Team name"), max_length=120)
    members = forms.ModelMultipleChoiceField(
        label=gettext_lazy("Members"),
        queryset=User.objects.none(),
        required=False,
        widget=forms.SelectMultiple(attrs={"size": 8}),
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        members = self.fields["members"]
        assert isinstance(members, forms.ModelMultipleChoiceField)
        members.queryset = services.staff_queryset().order_by("last_name", "first_name", "email")


@login_required
@permission_required("accounts.manage_users", raise_exception=True)
@require_http_methods(["GET", "POST"])
def user_create_view(request: HttpRequest) -> HttpResponse:
    form = UserCreateForm(request.POST or None, initial={"language": "it"})
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                user = services.user_create(
                    email=form.cleaned_data["email"],
                    password=form.cleaned_data["password"],
                    roles=form.cleaned_data["roles"],
                    first_name=form.cleaned_data["first_name"],
                    last_name=form.cleaned_data["last_name"],
                    language=form.cleaned_data["language"],
                )
            except ApplicationError as failure:
                apply_service_errors(form, failure)
            else:
                messages.success(request, _("User %(email)s created.") % {"email": user.email})
                return redirect("accounts:user_list")
        status = 422
        form.mark_errors()
    return render(request, "accounts/user_form.html", {"form": form}, status=status)


@login_required
@permission_required("accounts.manage_users", raise_exception=True)
@require_http_methods(["GET", "POST"])
def user_edit_view(request: HttpRequest, public_id: UUID) -> HttpResponse:
    account = get_object_or_404(User, public_id=public_id)
    form = UserEditForm(
        request.POST or None, initial={"roles": sorted(account.role_names), "is_active": account.is_active}
    )
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                with transaction.atomic():
                    services.user_set_roles(user=account, roles=form.cleaned_data["roles"])
                    services.user_set_active(
                        user=account, is_active=form.cleaned_data["is_active"], acting_user_id=request.user.pk
                    )
            except ApplicationError as failure:
                apply_service_errors(form, failure)
            else:
                messages.success(request, _("Changes to %(email)s saved.") % {"email": account.email})
                return redirect("accounts:user_list")
        status = 422
        form.mark_errors()
    return render(request, "accounts/user_edit.html", {"form": form, "account": account}, status=status)


@login_required
@permission_required("accounts.manage_users", raise_exception=True)
@require_http_methods(["GET", "POST"])
def team_list_view(request: HttpRequest) -> HttpResponse:
    form = TeamForm(request.POST or None)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                team = services.team_create(
                    name=form.cleaned_data["name"], member_ids=[u.pk for u in form.cleaned_data["members"]]
                )
            except ApplicationError as failure:
                apply_service_errors(form, failure)
            else:
                messages.success(request, _("Team %(name)s created.") % {"name": team.name})
                return redirect("accounts:team_list")
        status = 422
        form.mark_errors()
    teams = Team.objects.prefetch_related("members").order_by("name")
    return render(request, "accounts/team_list.html", {"form": form, "teams": teams}, status=status)
