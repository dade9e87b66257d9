"""The dialer's pages under /contact-center/dialer/: campaigns (create, start/pause/finish, import a
contact list, the regulatory meter and the contacts), the simulator with its chart (run before a
campaign starts), and the do-not-call list with RPO imports. Everyone here needs
``contact_center.run_campaigns``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from functools import wraps
from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import URLPattern, URLResolver, path
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_http_methods, require_POST

from fedele.accounts.facade import Actor, actor_for
from fedele.contact_center.dialer.simulator import (
    SimulationSettings,
    simulate_many,
    too_large_for_one_request,
)
from fedele.contact_center.models import Campaign, ContactState, Queue
from fedele.contact_center.selectors import dialer as selectors
from fedele.contact_center.services import dialer as services
from fedele.contact_center.services import dialer_lists
from fedele.shared import clock
from fedele.shared.errors import ApplicationError, PermissionDenied
from fedele.shared.web.forms import BootstrapFormMixin, apply_service_errors

RUN = "contact_center.run_campaigns"
WEEKDAYS = (
    gettext_lazy("Monday"),
    gettext_lazy("Tuesday"),
    gettext_lazy("Wednesday"),
    gettext_lazy("Thursday"),
    gettext_lazy("Friday"),
    gettext_lazy("Saturday"),
    gettext_lazy("Sunday"),
)
CHART_WIDTH = 640
CHART_HEIGHT = 180

View = Callable[..., HttpResponse]


def campaigners_only(view: View) -> View:
    @login_required
    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not actor_for(request.user).can(RUN):
            raise PermissionDenied(_("You cannot run outbound campaigns."))
        return view(request, *args, **kwargs)

    return wrapper


def _actor(request: HttpRequest) -> Actor:
    return actor_for(request.user)


# -- forms -----------------------------------------------------------------------------------------


class CampaignForm(BootstrapFormMixin, forms.Form):
    code = forms.SlugField(label=gettext_lazy("Code"), max_length=40)
    name = forms.CharField(label=gettext_lazy("Name"), max_length=120)
    queue = forms.ModelChoiceField(
        label=gettext_lazy("Queue"), queryset=Queue.objects.filter(active=True), to_field_name="code"
    )
    mode = forms.ChoiceField(
        label=gettext_lazy("Dialling mode"),
        choices=[
            ("progressive", gettext_lazy("progressive (one line per free agent)")),
            ("predictive", gettext_lazy("predictive (paced to the abandon target)")),
            ("preview", gettext_lazy("preview (the agent dials)")),
        ],
    )
    caller_id = forms.CharField(label=gettext_lazy("Caller id"), max_length=30, required=False)
    target_abandon_percent = forms.DecimalField(
        label=gettext_lazy("Target abandon rate (%)"),
        min_value=0.01,
        max_value=3,
        decimal_places=2,
        initial=1.5,
    )
    abandon_rule = forms.ChoiceField(
        label=gettext_lazy("Regulatory rule"),
        choices=[
            ("rolling_30_days", gettext_lazy("3 per cent over a rolling 30 days")),
            ("rolling_24_hours", gettext_lazy("3 per cent over a rolling 24 hours")),
        ],
    )
    max_attempts = forms.IntegerField(
        label=gettext_lazy("Maximum attempts"), min_value=1, max_value=50, initial=5
    )
    check_rpo = forms.BooleanField(
        label=gettext_lazy("Check the Registro delle Opposizioni"), required=False, initial=True
    )


class ImportForm(BootstrapFormMixin, forms.Form):
    file = forms.FileField(label=gettext_lazy("CSV or XLSX file"))
    mode = forms.ChoiceField(
        label=gettext_lazy("If some rows are wrong"),
        choices=[
            ("all_or_none", gettext_lazy("import nothing")),
            ("good_rows", gettext_lazy("import the good rows")),
        ],
    )


class SimulationForm(BootstrapFormMixin, forms.Form):
    agents = forms.IntegerField(label=gettext_lazy("Agents"), min_value=1, max_value=500, initial=20)
    live_answer_percent = forms.FloatField(
        label=gettext_lazy("Live answers (%)"), min_value=1, max_value=100, initial=30
    )
    machine_percent = forms.FloatField(
        label=gettext_lazy("Answering machines (%)"), min_value=0, max_value=100, initial=15
    )
    mean_handle_seconds = forms.FloatField(
        label=gettext_lazy("Average handle time (s)"), min_value=1, max_value=7200, initial=180
    )
    hours = forms.FloatField(label=gettext_lazy("Hours"), min_value=0.25, max_value=12, initial=8)
    seeds = forms.IntegerField(label=gettext_lazy("Runs"), min_value=1, max_value=100, initial=10)


class DncForm(BootstrapFormMixin, forms.Form):
    phone = forms.CharField(label=gettext_lazy("Phone number"), max_length=40)
    reason = forms.CharField(label=gettext_lazy("Reason"), max_length=200, required=False)


class RpoForm(BootstrapFormMixin, forms.Form):
    file = forms.FileField(label=gettext_lazy("RPO result file"))
    checked_on = forms.DateField(
        label=gettext_lazy("Checked on"), widget=forms.DateInput(attrs={"type": "date"})
    )
    mode = ImportForm.base_fields["mode"]


# -- pages -----------------------------------------------------------------------------------------


@campaigners_only
@require_http_methods(["GET", "POST"])
def campaigns(request: HttpRequest) -> HttpResponse:
    form = CampaignForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            created = services.campaign_create(
                actor=_actor(request),
                code=data["code"],
                name=data["name"],
                queue_code=data["queue"].code,
                mode=data["mode"],
                caller_id=data["caller_id"],
                target_abandon_rate=data["target_abandon_percent"] / 100,
                abandon_rule=data["abandon_rule"],
                max_attempts=data["max_attempts"],
                check_rpo=data["check_rpo"],
            )
        except ApplicationError as error:
            apply_service_errors(form, error)
        else:
            messages.success(request, _("Campaign %(code)s created.") % {"code": created.code})
            return redirect("contact_center:dialer_campaign", code=created.code)
    form.mark_errors()
    return render(
        request,
        "contact_center/dialer/campaigns.html",
        {"campaigns": selectors.campaign_list().order_by("code"), "form": form},
    )


def _weekly(campaign: Campaign) -> list[tuple[str, str]]:
    rows: list[tuple[str, str]] = []
    for weekday, label in enumerate(WEEKDAYS):
        spans = [
            f"{w.start_time:%H:%M}–{w.end_time:%H:%M}" for w in campaign.windows.all() if w.weekday == weekday
        ]
        rows.append((str(label), ", ".join(spans) or "—"))
    return rows


def _campaign_context(request: HttpRequest, campaign: Campaign, **extra: Any) -> dict[str, Any]:
    figures = selectors.campaign_figures(campaign, at=clock.now())
    agents = campaign.queue.agents.filter(active=True).count()
    context = {
        "campaign": campaign,
        "figures": figures,
        "contact_states": [
            (ContactState(state).label, count) for state, count in figures.contacts_by_state.items()
        ],
        "meter_percent": round(figures.meter.rate * 100, 2),
        "cap_percent": round(figures.meter.cap_rate * 100, 2),
        "meter_bar": min(100, round(figures.meter.rate / figures.meter.cap_rate * 100))
        if figures.meter.cap_rate
        else 0,
        "weekly": _weekly(campaign),
        "contacts": selectors.contact_list(campaign)[:50],
        "lists": selectors.contact_lists_of(campaign)[:5],
        "import_form": ImportForm(),
        "simulation_form": SimulationForm(
            initial={
                "agents": max(1, agents),
                "live_answer_percent": float(campaign.prior_live_rate) * 100,
            }
        ),
    }
    context.update(extra)
    return context


@campaigners_only
@require_http_methods(["GET"])
def campaign_detail(request: HttpRequest, code: str) -> HttpResponse:
    campaign = selectors.campaign_get(code)
    return render(request, "contact_center/dialer/campaign.html", _campaign_context(request, campaign))


@campaigners_only
@require_POST
def campaign_state(request: HttpRequest, code: str) -> HttpResponse:
    campaign = selectors.campaign_get(code)
    try:
        services.campaign_state_set(
            actor=_actor(request), campaign=campaign, state=request.POST.get("state", "")
        )
    except ApplicationError as error:
        messages.error(request, error.message)
    return redirect("contact_center:dialer_campaign", code=code)


@campaigners_only
@require_POST
def campaign_import(request: HttpRequest, code: str) -> HttpResponse:
    campaign = selectors.campaign_get(code)
    form = ImportForm(request.POST, request.FILES)
    report_errors: list[tuple[str, list[str]]] = []
    if form.is_valid():
        upload = form.cleaned_data["file"]
        file_format = "xlsx" if upload.name.lower().endswith(".xlsx") else "csv"
        try:
            report = dialer_lists.contact_list_import(
                actor=_actor(request),
                campaign=campaign,
                name=upload.name,
                content=upload.read(dialer_lists.MAX_BYTES + 1),
                file_format=file_format,
                mode=form.cleaned_data["mode"],
            )
        except ApplicationError as error:
            report_errors = sorted(error.fields.items(), key=lambda item: _line_order(item[0]))
            messages.error(request, error.message)
        else:
            messages.success(
                request,
                _(
                    "%(imported)d numbers imported, %(duplicates)d duplicates skipped, "
                    "%(blocked)d on a do-not-call list."
                )
                % {"imported": report.imported, "duplicates": report.duplicates, "blocked": report.blocked},
            )
            return redirect("contact_center:dialer_campaign", code=code)
    form.mark_errors()
    context = _campaign_context(request, campaign, import_form=form, import_errors=report_errors)
    return render(request, "contact_center/dialer/campaign.html", context, status=422)


def _line_order(key: str) -> int:
    number = key.removeprefix("line ")
    return int(number) if number.isdigit() else 0


def _chart(slots: list[dict[str, float]]) -> dict[str, Any]:
    """Bars of occupancy per half hour and a line of the abandon rate (of live answers) per slot."""
    if not slots:
        return {"bars": [], "points": "", "width": CHART_WIDTH, "height": CHART_HEIGHT}
    step = CHART_WIDTH / len(slots)
    bars = []
    points = []
    for index, slot in enumerate(slots):
        hours, minutes = divmod(int(slot["start_seconds"]) // 60, 60)
        height = slot["occupancy"] * (CHART_HEIGHT - 20)
        bars.append(
            {
                "x": round(index * step + 2, 1),
                "y": round(CHART_HEIGHT - height, 1),
                "width": round(max(1.0, step - 4), 1),
                "height": round(height, 1),
                "label": f"{hours:02d}:{minutes:02d}",
                "occupancy": round(slot["occupancy"] * 100, 1),
            }
        )
        rate = slot["abandoned"] / slot["live_answers"] if slot["live_answers"] else 0.0
        # 5 % abandon reaches the top of the chart; the 3 % cap line sits at 60 % height.
        y = CHART_HEIGHT - min(1.0, rate / 0.05) * (CHART_HEIGHT - 20)
        points.append(f"{round(index * step + step / 2, 1)},{round(y, 1)}")
    cap_y = round(CHART_HEIGHT - 0.6 * (CHART_HEIGHT - 20), 1)
    return {
        "bars": bars,
        "points": " ".join(points),
        "width": CHART_WIDTH,
        "height": CHART_HEIGHT,
        "cap_y": cap_y,
    }


@campaigners_only
@require_POST
def campaign_simulate(request: HttpRequest, code: str) -> HttpResponse:
    campaign = selectors.campaign_get(code)
    form = SimulationForm(request.POST)
    context: dict[str, Any] = {"campaign": campaign, "simulation_form": form}
    if form.is_valid():
        data = form.cleaned_data
        settings = replace(
            SimulationSettings(),
            agents=data["agents"],
            live_answer_rate=data["live_answer_percent"] / 100,
            machine_rate=min(data["machine_percent"] / 100, 1 - data["live_answer_percent"] / 100),
            busy_rate=0.0,
            mean_handle_seconds=data["mean_handle_seconds"],
            day_seconds=data["hours"] * 3600,
            mode=campaign.mode,
            target_abandon_rate=float(campaign.target_abandon_rate),
            abandon_cap_rate=float(campaign.abandon_cap_rate),
            max_lines_per_agent=campaign.max_lines_per_agent,
            prior_live_rate=float(campaign.prior_live_rate),
        )
        problems = settings.validate()
        if problems:
            for field, problem in problems.items():
                form.add_error(None, f"{field}: {problem}")
        elif too_large_for_one_request(settings, runs=data["seeds"]):
            form.add_error(
                "seeds",
                _("This simulation is too large for one request: use fewer runs, agents or hours."),
            )
        else:
            summary = simulate_many(settings, seeds=range(data["seeds"]))
            first = summary["results"][0]
            context.update(
                summary=summary,
                first=first,
                chart=_chart(first.slots),
                abandon_percent={k: round(v * 100, 2) for k, v in summary["abandon_rate"].items()},
                occupancy_percent={k: round(v * 100, 1) for k, v in summary["occupancy"].items()},
            )
    form.mark_errors()
    status = 200 if form.is_valid() and "summary" in context else 422
    return render(request, "contact_center/dialer/partials/_simulation.html", context, status=status)


@campaigners_only
@require_http_methods(["GET", "POST"])
def do_not_call(request: HttpRequest) -> HttpResponse:
    dnc_form = DncForm(request.POST if request.POST.get("form") == "dnc" else None)
    rpo_form = RpoForm(
        request.POST if request.POST.get("form") == "rpo" else None,
        request.FILES if request.POST.get("form") == "rpo" else None,
    )
    rpo_errors: list[tuple[str, list[str]]] = []
    if request.method == "POST":
        if request.POST.get("remove"):
            try:
                dialer_lists.dnc_remove(actor=_actor(request), phone=request.POST["remove"])
                messages.success(request, _("Number removed from the list."))
            except ApplicationError as error:
                messages.error(request, error.message)
            return redirect("contact_center:dialer_dnc")
        if dnc_form.is_bound and dnc_form.is_valid():
            try:
                entry = dialer_lists.dnc_add(
                    actor=_actor(request),
                    phone=dnc_form.cleaned_data["phone"],
                    reason=dnc_form.cleaned_data["reason"],
                )
            except ApplicationError as error:
                apply_service_errors(dnc_form, error)
            else:
                messages.success(request, _("%(phone)s will not be called.") % {"phone": entry.phone})
                return redirect("contact_center:dialer_dnc")
        if rpo_form.is_bound and rpo_form.is_valid():
            try:
                batch = dialer_lists.rpo_import(
                    actor=_actor(request),
                    name=rpo_form.cleaned_data["file"].name,
                    content=rpo_form.cleaned_data["file"].read(dialer_lists.MAX_BYTES + 1),
                    checked_on=rpo_form.cleaned_data["checked_on"],
                    mode=rpo_form.cleaned_data["mode"],
                )
            except ApplicationError as error:
                rpo_errors = sorted(error.fields.items(), key=lambda item: _line_order(item[0]))
                if not error.fields or not rpo_errors[0][0].startswith("line"):
                    apply_service_errors(rpo_form, error)
                messages.error(request, error.message)
            else:
                messages.success(
                    request,
                    _("RPO result imported: %(registered)d registered, %(free)d not registered.")
                    % {"registered": batch.registered, "free": batch.not_registered},
                )
                return redirect("contact_center:dialer_dnc")
    dnc_form.mark_errors()
    rpo_form.mark_errors()
    query = request.GET.get("q", "")[:30]
    return render(
        request,
        "contact_center/dialer/do_not_call.html",
        {
            "entries": selectors.dnc_list(query)[:200],
            "batches": selectors.rpo_batches()[:20],
            "dnc_form": dnc_form,
            "rpo_form": rpo_form,
            "rpo_errors": rpo_errors,
            "query": query,
        },
        status=422 if request.method == "POST" else 200,
    )


urlpatterns: list[URLPattern | URLResolver] = [
    path("dialer/", campaigns, name="dialer_campaigns"),
    path("dialer/do-not-call/", do_not_call, name="dialer_dnc"),
    path("dialer/<slug:code>/", campaign_detail, name="dialer_campaign"),
    path("dialer/<slug:code>/state/", campaign_state, name="dialer_campaign_state"),
    path("dialer/<slug:code>/import/", campaign_import, name="dialer_campaign_import"),
    path("dialer/<slug:code>/simulate/", campaign_simulate, name="dialer_campaign_simulate"),
]
