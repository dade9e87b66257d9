"""Dunning: chasing overdue invoices until they are paid.

The periodic job (:func:`dunning_run`) opens one case per overdue finalised invoice and runs the
steps that are due on each: on the days of the policy's retry schedule it retries the payment through
the gateway (card or SEPA methods) and e-mails a reminder in the customer's language; past
``escalate_after_days`` it hands the case to the collections queue (``billing.dunning_escalated``);
past ``suspend_after_days`` it suspends the account's services and marks its subscriptions past due.
When the invoice is paid (``billing.invoice_paid``) the case is closed and the services come back.

Each step runs once: it is claimed by inserting its DunningAction row (unique per case, kind and
step) under the case's row lock before anything is done, so two runs at the same time cannot both
send the reminder or retry the card.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from datetime import date, timedelta

from celery import shared_task
from django.conf import settings
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.utils import translation
from django.utils.translation import gettext as _

from fedele.billing.contracts import InvoiceKind, InvoiceStatus, SubscriptionStatus
from fedele.billing.dunning_events import DunningEscalated
from fedele.billing.models import (
    BillingAccount,
    DunningAction,
    DunningCase,
    DunningPolicy,
    Invoice,
    Subscription,
    SubscriptionChange,
)
from fedele.billing.services import payments
from fedele.billing.snapshots import subscription_snapshot
from fedele.shared import audit, clock, events
from fedele.shared.errors import ValidationFailed
from fedele.shared.events import EventEnvelope, handles

logger = logging.getLogger(__name__)
LIVE_CASE = (DunningCase.Status.OPEN, DunningCase.Status.ESCALATED)


def policy_validate(retry_days: list[int], escalate_after_days: int, suspend_after_days: int) -> list[int]:
    errors: dict[str, str] = {}
    if not isinstance(retry_days, list) or not all(
        isinstance(d, int) and not isinstance(d, bool) for d in retry_days
    ):
        errors["retry_days"] = "A list of whole days, e.g. [1, 3, 7]."
    elif any(d < 0 or d > 365 for d in retry_days) or len(set(retry_days)) != len(retry_days):
        errors["retry_days"] = "Distinct days between 0 and 365."
    elif len(retry_days) > 20:
        errors["retry_days"] = "At most 20 steps."
    for name, value in (
        ("escalate_after_days", escalate_after_days),
        ("suspend_after_days", suspend_after_days),
    ):
        if value < 0 or value > 365:
            errors[name] = "Between 0 (never) and 365 days."
    if errors:
        raise ValidationFailed("The dunning policy is not valid.", code="invalid_policy", fields=errors)
    return sorted(retry_days)


def default_policy() -> DunningPolicy:
    policy = DunningPolicy.objects.filter(is_default=True).first()
    if policy is not None:
        return policy
    try:
        with transaction.atomic():
            return DunningPolicy.objects.create(
                name="Standard",
                retry_days=[1, 3, 7],
                escalate_after_days=14,
                suspend_after_days=21,
                is_default=True,
                created_at=clock.now(),
            )
    except IntegrityError:
        return DunningPolicy.objects.get(is_default=True)


def policy_update(
    *,
    policy: DunningPolicy,
    retry_days: list[int],
    escalate_after_days: int,
    suspend_after_days: int,
    send_reminders: bool = True,
    actor_id: int | None = None,
) -> DunningPolicy:
    days = policy_validate(retry_days, escalate_after_days, suspend_after_days)
    with transaction.atomic():
        locked = DunningPolicy.objects.select_for_update().get(pk=policy.pk)
        before = {
            "retry_days": locked.retry_days,
            "escalate": locked.escalate_after_days,
            "suspend": locked.suspend_after_days,
        }
        locked.retry_days = days
        locked.escalate_after_days = escalate_after_days
        locked.suspend_after_days = suspend_after_days
        locked.send_reminders = send_reminders
        locked.save()
        audit.record(
            action="billing.dunning_policy_updated",
            object_type="billing.dunning_policy",
            object_id=str(locked.public_id),
            before=before,
            after={"retry_days": days, "escalate": escalate_after_days, "suspend": suspend_after_days},
            actor_id=actor_id,
        )
    return locked


def _thresholds(policy: DunningPolicy) -> list[int]:
    days = list(policy.retry_days)
    days += [d for d in (policy.escalate_after_days, policy.suspend_after_days) if d > 0]
    return sorted(set(days))


def _next_action_on(policy: DunningPolicy, due_date: date, today: date) -> date | None:
    for days in _thresholds(policy):
        if due_date + timedelta(days=days) > today:
            return due_date + timedelta(days=days)
    return None


@dataclass(slots=True)
class RunResult:
    opened: int = 0
    retries: int = 0
    reminders: int = 0
    escalated: int = 0
    suspended: int = 0
    closed: int = 0


def cases_open(*, today: date) -> int:
    """One case per finalised invoice past its due date with something still due."""
    policy = default_policy()
    overdue = Invoice.objects.filter(
        kind=InvoiceKind.INVOICE,
        status=InvoiceStatus.FINALISED,
        due_date__lt=today,
        dunning_case__isnull=True,
    ).order_by("pk")
    opened = 0
    for invoice in overdue.iterator(chunk_size=500):
        if invoice.amount_due <= 0 or invoice.due_date is None:
            continue
        now = clock.now()
        try:
            with transaction.atomic():
                case = DunningCase.objects.create(
                    invoice=invoice,
                    account_id=invoice.account_id,
                    policy=policy,
                    due_date=invoice.due_date,
                    next_action_on=today,
                    opened_at=now,
                    updated_at=now,
                )
                audit.record(
                    action="billing.dunning_case_opened",
                    object_type="billing.dunning_case",
                    object_id=str(case.public_id),
                    after={"invoice": invoice.number, "amount_due": invoice.amount_due},
                )
        except IntegrityError:
            continue  # another run opened it
        opened += 1
    return opened


def dunning_run(*, today: date | None = None) -> RunResult:
    """The periodic job: open cases, then run every case's due steps."""
    today = today or payments.business_today()
    result = RunResult(opened=cases_open(today=today))
    due = DunningCase.objects.filter(status__in=LIVE_CASE, next_action_on__lte=today).order_by("pk")
    for case_id in list(due.values_list("pk", flat=True)):
        _case_step(case_id, today, result)
    return result


@dataclass(frozen=True, slots=True)
class Claimed:
    retry_step: int | None
    reminder_step: int | None
    escalate: bool
    suspend: bool


def _claim(case: DunningCase, kind: str, step: int, outcome: str = "started", detail: str = "") -> bool:
    try:
        with transaction.atomic():
            DunningAction.objects.create(
                case=case, kind=kind, step=step, outcome=outcome, detail=detail[:500], occurred_at=clock.now()
            )
    except IntegrityError:
        return False
    return True


def _case_step(case_id: int, today: date, result: RunResult) -> None:
    with transaction.atomic():
        case = (
            DunningCase.objects.select_for_update()
            .select_related("policy", "invoice", "account")
            .get(pk=case_id)
        )
        if case.status not in LIVE_CASE or (case.next_action_on and case.next_action_on > today):
            return
        invoice = case.invoice
        if invoice.status != InvoiceStatus.FINALISED or invoice.amount_due <= 0:
            _close_locked(case, "settled" if invoice.status == InvoiceStatus.PAID else str(invoice.status))
            result.closed += 1
            return
        policy = case.policy
        overdue_days = (today - case.due_date).days
        due_steps = [index for index, days in enumerate(policy.retry_days) if overdue_days >= days]
        latest = due_steps[-1] if due_steps else None
        done = set(
            DunningAction.objects.filter(case=case, kind=DunningAction.Kind.RETRY).values_list(
                "step", flat=True
            )
        )
        claimed_step: int | None = None
        for index in due_steps:
            if index in done:
                continue
            if index != latest:
                # The job did not run that day: only the latest step is worth running now.
                _claim(case, DunningAction.Kind.RETRY, index, "skipped", "superseded by a later step")
                _claim(case, DunningAction.Kind.REMINDER, index, "skipped", "superseded by a later step")
            elif _claim(case, DunningAction.Kind.RETRY, index):
                claimed_step = index
                _claim(
                    case,
                    DunningAction.Kind.REMINDER,
                    index,
                    "queued" if policy.send_reminders else "disabled",
                )
        if claimed_step is not None:
            case.steps_done = claimed_step + 1
        detail = f"{overdue_days} days overdue"
        escalate_due = policy.escalate_after_days and overdue_days >= policy.escalate_after_days
        if escalate_due and case.escalated_at is None and _claim(case, "escalate", 0, "escalated", detail):
            _escalate_locked(case, overdue_days)
            result.escalated += 1
        suspend_due = policy.suspend_after_days and overdue_days >= policy.suspend_after_days
        if suspend_due and not case.suspended and _claim(case, "suspend", 0, "suspended", detail):
            _suspend_locked(case, today)
            result.suspended += 1
        case.next_action_on = _next_action_on(policy, case.due_date, today)
        case.updated_at = clock.now()
        case.save()
        if claimed_step is not None and policy.send_reminders:
            invoice_id, step = invoice.pk, claimed_step
            transaction.on_commit(lambda: _send_reminder(case_id, invoice_id, step))
            result.reminders += 1
    if claimed_step is not None:
        _retry(case, claimed_step)
        result.retries += 1


def _retry(case: DunningCase, step: int) -> None:
    """Charge the invoice again through the account's automatic method (outside the case lock: it is
    a network call); the outcome is written on the step's log row."""
    try:
        outcome = payments.invoice_charge(invoice=case.invoice)
        status, detail = outcome.status, outcome.message
    except Exception as error:
        logger.exception("Dunning retry of case %s failed", case.pk)
        status, detail = "error", f"{type(error).__name__}: {error}"
    DunningAction.objects.filter(case=case, kind=DunningAction.Kind.RETRY, step=step).update(
        outcome=status[:32], detail=detail[:500]
    )


def _send_reminder(case_id: int, invoice_id: int, step: int) -> None:
    from fedele.customers.facade import customer_summaries

    invoice = Invoice.objects.select_related("account").get(pk=invoice_id)
    account = invoice.account
    summary = customer_summaries([account.customer_id]).get(account.customer_id)
    recipient = account.billing_email or (summary.email if summary else "")
    language = (summary.language if summary else "") or "it"
    if not recipient:
        DunningAction.objects.filter(case_id=case_id, kind=DunningAction.Kind.REMINDER, step=step).update(
            outcome="no_address", detail="The customer has no e-mail address."
        )
        return
    with translation.override(language):
        subject = _("Payment reminder: invoice %(number)s") % {"number": invoice.number}
        body = _(
            "Dear %(name)s,\n\nour records show that invoice %(number)s of %(issue_date)s, due on "
            "%(due_date)s, still has %(amount)s %(currency)s to pay.\n\nIf you have already paid, please "
            "ignore this message. Otherwise please pay as soon as possible to avoid the suspension of "
            "your services.\n\nThank you."
        ) % {
            "name": summary.display_name if summary else "",
            "number": invoice.number,
            "issue_date": invoice.issue_date.isoformat() if invoice.issue_date else "",
            "due_date": invoice.due_date.isoformat() if invoice.due_date else "",
            "amount": f"{invoice.amount_due:.2f}",
            "currency": invoice.currency,
        }
    send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, [recipient])
    DunningAction.objects.filter(case_id=case_id, kind=DunningAction.Kind.REMINDER, step=step).update(
        outcome="sent", detail=f"{language}: {recipient}"[:500]
    )


def _escalate_locked(case: DunningCase, overdue_days: int) -> None:
    case.status = DunningCase.Status.ESCALATED
    case.escalated_at = clock.now()
    invoice = case.invoice
    events.publish(
        DunningEscalated(
            case_id=str(case.public_id),
            invoice_id=str(invoice.public_id),
            invoice_number=invoice.number or "",
            customer_id=str(invoice.customer_snapshot.get("public_id", "")),
            currency=invoice.currency,
            amount_due=str(invoice.amount_due),
            days_overdue=overdue_days,
        ),
        aggregate_type="billing.dunning_case",
        aggregate_id=str(case.public_id),
    )
    audit.record(
        action="billing.dunning_escalated",
        object_type="billing.dunning_case",
        object_id=str(case.public_id),
        before={"status": "open"},
        after={"status": "escalated", "days_overdue": overdue_days},
    )


def _subscription_change(subscription: Subscription, kind: str, status: str, today: date, note: str) -> None:
    before = subscription_snapshot(subscription)
    subscription.status = status
    subscription.updated_at = clock.now()
    subscription.save(update_fields=["status", "updated_at"])
    SubscriptionChange.objects.create(
        subscription=subscription,
        kind=kind,
        effective_on=today,
        before=before,
        after=subscription_snapshot(subscription),
        note=note,
        occurred_at=clock.now(),
    )


def _suspend_locked(case: DunningCase, today: date) -> None:
    from fedele.billing.services.provisioning import entitlements_suspend

    account = BillingAccount.objects.select_for_update().get(pk=case.account_id)
    reason = f"dunning: invoice {case.invoice.number} unpaid"
    entitlements_suspend(account_id=account.pk, reason=reason)
    if not account.is_suspended:
        account.is_suspended = True
        account.updated_at = clock.now()
        account.save(update_fields=["is_suspended", "updated_at"])
    for subscription in (
        Subscription.objects.select_for_update()
        .filter(account=account, status=SubscriptionStatus.ACTIVE)
        .select_related("plan", "plan_version")
        .order_by("pk")
    ):
        _subscription_change(
            subscription, SubscriptionChange.Kind.PAST_DUE, SubscriptionStatus.PAST_DUE, today, reason
        )
    case.suspended = True
    audit.record(
        action="billing.account_suspended",
        object_type="billing.account",
        object_id=str(account.public_id),
        before={"is_suspended": False},
        after={"is_suspended": True, "invoice": case.invoice.number},
    )


def _close_locked(case: DunningCase, reason: str) -> None:
    today = payments.business_today()
    case.status = DunningCase.Status.CLOSED
    case.closed_at = clock.now()
    case.close_reason = reason[:100]
    case.next_action_on = None
    case.updated_at = clock.now()
    case.save()
    _claim(case, DunningAction.Kind.CLOSE, 0, "closed", reason)
    audit.record(
        action="billing.dunning_case_closed",
        object_type="billing.dunning_case",
        object_id=str(case.public_id),
        after={"status": "closed", "reason": reason},
    )
    if not case.suspended:
        return
    still_suspending = DunningCase.objects.filter(
        account_id=case.account_id, status__in=LIVE_CASE, suspended=True
    )
    if still_suspending.exclude(pk=case.pk).exists():
        return  # another unpaid invoice keeps the services suspended
    from fedele.billing.services.provisioning import entitlements_reactivate

    account = BillingAccount.objects.select_for_update().get(pk=case.account_id)
    entitlements_reactivate(account_id=account.pk, reason=f"dunning: invoice {case.invoice.number} {reason}")
    account.is_suspended = False
    account.updated_at = clock.now()
    account.save(update_fields=["is_suspended", "updated_at"])
    for subscription in (
        Subscription.objects.select_for_update()
        .filter(account=account, status=SubscriptionStatus.PAST_DUE)
        .select_related("plan", "plan_version")
        .order_by("pk")
    ):
        _subscription_change(
            subscription,
            SubscriptionChange.Kind.REACTIVATED,
            SubscriptionStatus.ACTIVE,
            today,
            "payment received",
        )
    _claim(case, DunningAction.Kind.REACTIVATE, 0, "reactivated", reason)
    audit.record(
        action="billing.account_reactivated",
        object_type="billing.account",
        object_id=str(account.public_id),
        before={"is_suspended": True},
        after={"is_suspended": False},
    )


def dunning_case_close(*, case: DunningCase, reason: str, actor_id: int | None = None) -> DunningCase:
    """A clerk closes a case by hand (a payment plan agreed, written off)."""
    reason = (reason or "").strip()
    if not reason or len(reason) > 100:
        raise ValidationFailed(
            "Say why the case is closed (1-100 characters).",
            code="invalid_reason",
            fields={"reason": "1-100 characters."},
        )
    with transaction.atomic():
        locked = DunningCase.objects.select_for_update().select_related("invoice").get(pk=case.pk)
        if locked.status in LIVE_CASE:
            _close_locked(locked, reason)
    locked.refresh_from_db()
    return locked


@handles("billing.invoice_paid", name="billing.dunning.on_invoice_paid")
def on_invoice_paid(envelope: EventEnvelope) -> None:
    invoice_public_id = str(envelope.payload.get("invoice_id") or "")
    if not invoice_public_id:
        return
    case_id = (
        DunningCase.objects.filter(invoice__public_id=invoice_public_id, status__in=LIVE_CASE)
        .values_list("pk", flat=True)
        .first()
    )
    if case_id is None:
        return
    with transaction.atomic():
        case = DunningCase.objects.select_for_update().select_related("invoice").get(pk=case_id)
        if case.status in LIVE_CASE and case.invoice.status == InvoiceStatus.PAID:
            _close_locked(case, "paid")


@shared_task(name="billing.dunning_run")
def dunning_run_task() -> dict[str, int]:
    return dataclasses.asdict(dunning_run())
