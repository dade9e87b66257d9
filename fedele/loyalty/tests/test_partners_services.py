"""Partner set-up (organisation, users, scoped credentials, prices, status) and the partner-side
operations: earn (direct and through the rules), burn, hold/confirm/cancel, reverse; masked look-up."""

from __future__ import annotations

import hashlib
from decimal import Decimal
from typing import Any

import pytest
import time_machine

from fedele.accounts.facade import actor_for
from fedele.accounts.models import ApiToken, Organisation, User
from fedele.accounts.tests.factories import user_with_roles
from fedele.loyalty.models import (
    LoyaltyEvent,
    Partner,
    PointsEntry,
    PointsTransaction,
    Reservation,
)
from fedele.loyalty.selectors.partners import masked_member, member_for_card, partner_of_actor
from fedele.loyalty.services.partners import (
    partner_burn,
    partner_create,
    partner_credentials,
    partner_credentials_issue,
    partner_credentials_revoke,
    partner_earn,
    partner_hold,
    partner_hold_cancel,
    partner_hold_confirm,
    partner_reverse,
    partner_set_status,
    partner_update,
    partner_user_add,
    partner_users,
)
from fedele.loyalty.tests.factories import TierFactory
from fedele.loyalty.tests.partners_fixtures import (
    at,
    coalition,
    manager,
    member_with,
    partner_actor,
    partner_with_user,
    spend_rule,
)
from fedele.shared.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from fedele.shared.models import AuditLog, OutboxEvent

pytestmark = pytest.mark.django_db
D = Decimal
NOW = at(2026, 3, 10)


@pytest.fixture(autouse=True)
def _frozen() -> Any:
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


@pytest.fixture
def shop() -> dict[str, Any]:
    programme = coalition()
    partner, user = partner_with_user(
        programme, code="shop", earn_price_per_point=D("0.012345"), burn_price_per_point=D("0.009500")
    )
    return {
        "programme": programme,
        "partner": partner,
        "user": user,
        "actor": partner_actor(user),
        "member": member_with(programme, 1_000, card="9000000000000001"),
    }


def _ledger_rows() -> tuple[int, int, int]:
    return PointsTransaction.objects.count(), PointsEntry.objects.count(), Reservation.objects.count()


# -- set-up --------------------------------------------------------------------------------------


def test_create_makes_the_organisation_and_its_first_user() -> None:
    programme = coalition()
    partner = partner_create(
        actor=manager(),
        programme=programme,
        data={
            "code": "eni-station",
            "name": "Stazione Eni",
            "category": "fuel",
            "earn_price_per_point": "0.012345",
            "burn_price_per_point": D("0.008"),
            "contact_email": "Conti@Eni.example",
            "user": {
                "email": "cassa@eni.example",
                "first_name": "Lia",
                "language": "it",
                "password": "Str0ng-Pass-99",
            },
        },
    )
    partner.refresh_from_db()
    assert (partner.code, partner.earn_price_per_point, partner.burn_price_per_point) == (
        "eni-station",
        D("0.012345"),
        D("0.008000"),
    )
    assert partner.contact_email == "conti@eni.example"
    organisation = Organisation.objects.get(pk=partner.organisation_id)
    assert (organisation.name, organisation.kind) == ("Stazione Eni", "partner")
    user = User.objects.get(email="cassa@eni.example")
    assert user.organisation_id == organisation.pk and user.role_names == frozenset({"partner"})
    assert user.check_password("Str0ng-Pass-99")
    actor = actor_for(user)
    assert actor.is_partner and partner_of_actor(actor) == partner
    assert [u.email for u in partner_users(partner)] == ["cassa@eni.example"]
    assert (
        AuditLog.objects.filter(action="loyalty.partner_created", object_id=str(partner.public_id)).count()
        == 1
    )
    assert OutboxEvent.objects.filter(event_type="loyalty.partner_created").count() == 1


@pytest.mark.parametrize(
    ("data", "code", "field"),
    [
        ({"code": "Bad Code", "name": "X"}, "validation_error", "code"),
        ({"code": "a" * 17, "name": "X"}, "validation_error", "code"),
        ({"code": "ok", "name": ""}, "validation_error", "name"),
        (
            {"code": "ok", "name": "X", "earn_price_per_point": "-0.01"},
            "invalid_price",
            "earn_price_per_point",
        ),
        (
            {"code": "ok", "name": "X", "burn_price_per_point": "0.0000001"},
            "invalid_price",
            "burn_price_per_point",
        ),
        ({"code": "ok", "name": "X", "burn_price_per_point": "abc"}, "invalid_price", "burn_price_per_point"),
        ({"code": "ok", "name": "X", "contact_email": "nope"}, "validation_error", "contact_email"),
        ({"code": "ok", "name": "X", "colour": "red"}, "unknown_fields", "colour"),
        ({"code": "ok", "name": "X", "user": {"email": "bad"}}, "validation_error", "user.email"),
    ],
)
def test_create_refuses_bad_data_and_writes_nothing(data: dict[str, Any], code: str, field: str) -> None:
    programme = coalition()
    with pytest.raises(ValidationFailed) as failure:
        partner_create(actor=manager(), programme=programme, data=data)
    assert failure.value.code == code and field in failure.value.fields
    assert not Partner.objects.exists() and not Organisation.objects.exists()


def test_create_needs_a_coalition_a_free_code_and_a_partner_manager() -> None:
    plain = coalition(is_coalition=False)
    with pytest.raises(ValidationFailed) as not_coalition:
        partner_create(actor=manager(), programme=plain, data={"code": "x", "name": "X"})
    assert not_coalition.value.code == "programme_not_coalition"
    programme = coalition()
    partner_create(actor=manager(), programme=programme, data={"code": "x", "name": "X"})
    boss = manager()
    user_before = User.objects.count()
    with pytest.raises(Conflict) as duplicate:
        partner_create(
            actor=boss, programme=programme, data={"code": "x", "name": "Y", "user": {"email": "y@y.example"}}
        )
    assert duplicate.value.code == "duplicate_code"
    assert (Partner.objects.count(), Organisation.objects.count(), User.objects.count()) == (
        1,
        1,
        user_before,
    )
    with pytest.raises(PermissionDenied):
        partner_create(
            actor=actor_for(user_with_roles("agent")), programme=programme, data={"code": "z", "name": "Z"}
        )
    assert Partner.objects.count() == 1


def test_a_taken_user_email_rolls_the_whole_partner_back() -> None:
    user_with_roles("agent", email="taken@example.it")
    programme = coalition()
    with pytest.raises(Conflict) as taken:
        partner_create(
            actor=manager(),
            programme=programme,
            data={"code": "x", "name": "X", "user": {"email": "taken@example.it"}},
        )
    assert taken.value.code == "duplicate_email"
    assert not Partner.objects.exists() and not Organisation.objects.exists()


def test_update_changes_prices_for_later_transactions_only(shop: dict[str, Any]) -> None:
    partner, member = shop["partner"], shop["member"]
    first = partner_earn(
        actor=shop["actor"], partner=partner, card_number=member.card_number, points=100, external_id="R1"
    )
    updated = partner_update(
        actor=manager(), partner=partner, data={"earn_price_per_point": "0.02", "name": "Shop 2"}
    )
    assert (updated.earn_price_per_point, updated.name, partner.name) == (D("0.020000"), "Shop 2", "Shop 2")
    second = partner_earn(
        actor=shop["actor"], partner=partner, card_number=member.card_number, points=100, external_id="R2"
    )
    assert (first.partner_amount, second.partner_amount) == (D("1.23"), D("2.00"))
    assert PointsTransaction.objects.get(pk=first.transaction.pk).partner_amount == D("1.23")  # type: ignore[union-attr]
    with pytest.raises(ValidationFailed) as code_change:
        partner_update(actor=manager(), partner=partner, data={"code": "other"})
    assert code_change.value.code == "unknown_fields"


def test_users_and_scoped_credentials(shop: dict[str, Any]) -> None:
    partner, owner = shop["partner"], shop["user"]
    second_id = partner_user_add(
        actor=manager(), partner=partner, email="till@shop.example", first_name="Till"
    )
    assert sorted(u.email for u in partner_users(partner)) == sorted([owner.email, "till@shop.example"])
    plain, token_id = partner_credentials_issue(
        actor=manager(),
        partner=partner,
        scopes=["loyalty:partner:earn", "loyalty:partner:read"],
        user_id=second_id,
    )
    token = ApiToken.objects.get(token_hash=hashlib.sha256(plain.encode()).hexdigest())
    assert str(token.public_id) == token_id and token.user_id == second_id and token.revoked_at is None
    assert token.scopes == ["loyalty:partner:earn", "loyalty:partner:read"]
    assert ApiToken.objects.get(public_id=token_id).token_hash != plain
    listed = partner_credentials(partner)
    assert [(str(t.public_id), t.active) for t in listed] == [(token_id, True)]
    partner_credentials_revoke(actor=manager(), partner=partner, token_id=token_id)
    token.refresh_from_db()
    assert token.revoked_at == NOW
    assert [t.active for t in partner_credentials(partner)] == [False]


@pytest.mark.parametrize(
    ("scopes", "user", "code"),
    [
        (["read"], None, "invalid_scopes"),
        ([], None, "invalid_scopes"),
        (["loyalty:partner:earn", "loyalty:admin"], None, "invalid_scopes"),
        (["loyalty:partner:earn"], "stranger", "user_not_of_partner"),
    ],
)
def test_credentials_refuse_other_scopes_and_users(
    shop: dict[str, Any], scopes: list[str], user: Any, code: str
) -> None:
    user_id = user_with_roles("agent").pk if user == "stranger" else None
    with pytest.raises(ValidationFailed) as failure:
        partner_credentials_issue(actor=manager(), partner=shop["partner"], scopes=scopes, user_id=user_id)
    assert failure.value.code == code
    assert not ApiToken.objects.exists()


def test_revoking_another_partners_token_is_not_found(shop: dict[str, Any]) -> None:
    other, _user = partner_with_user(shop["programme"], code="other")
    _plain, token_id = partner_credentials_issue(
        actor=manager(), partner=other, scopes=["loyalty:partner:read"]
    )
    with pytest.raises(NotFound):
        partner_credentials_revoke(actor=manager(), partner=shop["partner"], token_id=token_id)
    assert ApiToken.objects.get(public_id=token_id).revoked_at is None


# -- earning ---------------------------------------------------------------------------------------


def test_earn_direct_points_at_the_partner_price(shop: dict[str, Any]) -> None:
    partner, member = shop["partner"], shop["member"]
    result = partner_earn(
        actor=shop["actor"], partner=partner, card_number=member.card_number, points=81, external_id="R-81"
    )
    txn = result.transaction
    assert txn is not None and (txn.points, txn.partner_amount, txn.source) == (81, D("1.00"), "partner:shop")
    assert (txn.partner_id, txn.created_by_id, txn.reference) == (partner.pk, shop["user"].pk, "R-81")
    entries = sorted(
        PointsEntry.objects.filter(transaction=txn).values_list("account", "points", "partner_id")
    )
    assert entries == [("member_available", 81, None), ("partner_issuance", -81, partner.pk)]
    member.refresh_from_db()
    assert member.available == 1_081
    # The same external id again: the first transaction, nothing more.
    again = partner_earn(
        actor=shop["actor"], partner=partner, card_number=member.card_number, points=81, external_id="R-81"
    )
    assert again.transaction == txn and PointsTransaction.objects.filter(partner=partner).count() == 1
    with pytest.raises(Conflict) as reused:
        partner_earn(
            actor=shop["actor"],
            partner=partner,
            card_number=member.card_number,
            points=82,
            external_id="R-81",
        )
    assert reused.value.code == "external_id_reused"


def test_earn_by_amount_goes_through_the_rules(shop: dict[str, Any]) -> None:
    partner, member = shop["partner"], shop["member"]
    spend_rule(shop["programme"], "2")
    result = partner_earn(
        actor=shop["actor"],
        partner=partner,
        card_number=member.card_number,
        amount_eur="10.99",
        external_id="S-1",
    )
    # 2 points per euro × 10.99 = 21.98 → 21 (the programme rounds down); 21 × 0.012345 = 0.259245 → 0.26
    assert (result.points, result.partner_amount) == (21, D("0.26"))
    event = LoyaltyEvent.objects.get(external_id="S-1")
    assert (event.source, event.event_type, event.amount_eur, event.transaction) == (
        "partner:shop",
        "spend",
        D("10.99"),
        result.transaction,
    )
    assert result.transaction is not None and result.transaction.partner_id == partner.pk
    again = partner_earn(
        actor=shop["actor"],
        partner=partner,
        card_number=member.card_number,
        amount_eur="10.99",
        external_id="S-1",
    )
    assert again.transaction == result.transaction and LoyaltyEvent.objects.count() == 1
    with pytest.raises(Conflict):
        partner_earn(
            actor=shop["actor"], partner=partner, card_number=member.card_number, points=5, external_id="S-1"
        )
    # A spend of zero is recorded but earns nothing.
    zero = partner_earn(
        actor=shop["actor"],
        partner=partner,
        card_number=member.card_number,
        amount_eur="0",
        external_id="S-0",
    )
    assert (zero.transaction, zero.points, zero.partner_amount) == (None, 0, D("0.00"))


@pytest.mark.parametrize(
    ("kwargs", "error", "code"),
    [
        ({"card_number": "0000", "points": 5}, NotFound, "member_not_found"),
        ({"points": -5}, ValidationFailed, "invalid_points"),
        ({"points": 0}, ValidationFailed, "invalid_points"),
        ({"points": 10_000_001}, ValidationFailed, "points_too_large"),
        ({"points": 5, "amount_eur": "1"}, ValidationFailed, "amount_or_points"),
        ({}, ValidationFailed, "amount_or_points"),
        ({"amount_eur": "-1"}, ValidationFailed, "invalid_amount"),
        ({"points": 5, "external_id": ""}, ValidationFailed, "invalid_external_id"),
        ({"points": 5, "external_id": "a b"}, ValidationFailed, "invalid_external_id"),
        ({"points": 5, "occurred_at": at(2026, 2, 1)}, ValidationFailed, "invalid_occurred_at"),
        ({"points": 5, "occurred_at": at(2026, 3, 11)}, ValidationFailed, "invalid_occurred_at"),
    ],
)
def test_bad_earns_write_nothing(
    shop: dict[str, Any], kwargs: dict[str, Any], error: type, code: str
) -> None:
    before = _ledger_rows()
    arguments = {"card_number": shop["member"].card_number, "external_id": "E-1", **kwargs}
    with pytest.raises(error) as failure:
        partner_earn(actor=shop["actor"], partner=shop["partner"], **arguments)
    assert failure.value.code == code
    assert _ledger_rows() == before and not LoyaltyEvent.objects.exists()


def test_a_suspended_partner_can_neither_earn_nor_burn(shop: dict[str, Any]) -> None:
    partner, member = shop["partner"], shop["member"]
    partner_set_status(actor=manager(), partner=partner, status="suspended", reason="unpaid invoices")
    assert OutboxEvent.objects.filter(event_type="loyalty.partner_status_changed").count() == 1
    before = _ledger_rows()
    for operation, kwargs in (
        (partner_earn, {"points": 5}),
        (partner_burn, {"points": 5}),
        (partner_hold, {"points": 5}),
    ):
        with pytest.raises(PermissionDenied) as refused:
            operation(
                actor=shop["actor"],
                partner=partner,
                card_number=member.card_number,
                external_id="X",
                **kwargs,
            )
        assert refused.value.code == "partner_suspended"
    assert _ledger_rows() == before
    partner_set_status(actor=manager(), partner=partner, status="active")
    assert (
        partner_earn(
            actor=shop["actor"], partner=partner, card_number=member.card_number, points=5, external_id="X"
        ).points
        == 5
    )


def test_what_a_partner_does_not_offer_is_refused(shop: dict[str, Any]) -> None:
    partner, member = shop["partner"], shop["member"]
    partner_update(actor=manager(), partner=partner, data={"can_burn": False})
    with pytest.raises(PermissionDenied) as refused:
        partner_burn(
            actor=shop["actor"], partner=partner, card_number=member.card_number, points=5, external_id="B"
        )
    assert refused.value.code == "partner_cannot_burn"


def test_a_partner_user_cannot_act_for_another_partner(shop: dict[str, Any]) -> None:
    other, _user = partner_with_user(shop["programme"], code="other")
    before = _ledger_rows()
    with pytest.raises(PermissionDenied):
        partner_earn(
            actor=shop["actor"],
            partner=other,
            card_number=shop["member"].card_number,
            points=5,
            external_id="Z",
        )
    with pytest.raises(PermissionDenied):
        partner_earn(
            actor=actor_for(user_with_roles("portal_customer")),
            partner=other,
            card_number=shop["member"].card_number,
            points=5,
            external_id="Z",
        )
    assert _ledger_rows() == before


def test_cards_of_another_programme_are_unknown(shop: dict[str, Any]) -> None:
    stranger = member_with(coalition(), 100, card="9000000000000099")
    with pytest.raises(NotFound):
        partner_burn(
            actor=shop["actor"],
            partner=shop["partner"],
            card_number=stranger.card_number,
            points=5,
            external_id="B",
        )


# -- burning ---------------------------------------------------------------------------------------


def test_burn_at_the_partner_price_and_insufficient_balance(shop: dict[str, Any]) -> None:
    partner, member = shop["partner"], shop["member"]
    redeem = partner_burn(
        actor=shop["actor"], partner=partner, card_number=member.card_number, points=250, external_id="B-1"
    )
    assert (redeem.kind, redeem.points, redeem.partner_amount) == ("redeem", 250, D("2.38"))  # 2.375 half-up
    entries = PointsEntry.objects.filter(transaction=redeem, account="partner_redemption")
    assert [(e.points, e.partner_id) for e in entries] == [(250, partner.pk)]
    member.refresh_from_db()
    assert member.available == 750
    assert (
        partner_burn(
            actor=shop["actor"],
            partner=partner,
            card_number=member.card_number,
            points=250,
            external_id="B-1",
        )
        == redeem
    )
    before = _ledger_rows()
    with pytest.raises(ValidationFailed) as short:
        partner_burn(
            actor=shop["actor"],
            partner=partner,
            card_number=member.card_number,
            points=751,
            external_id="B-2",
        )
    assert short.value.code == "insufficient_balance"
    with pytest.raises(Conflict) as reused:
        partner_burn(
            actor=shop["actor"], partner=partner, card_number=member.card_number, points=1, external_id="B-1"
        )
    assert reused.value.code == "external_id_reused"
    assert _ledger_rows() == before
    member.refresh_from_db()
    assert member.available == 750


def test_hold_then_confirm_or_cancel(shop: dict[str, Any], _frozen: Any) -> None:
    partner, member = shop["partner"], shop["member"]
    hold = partner_hold(
        actor=shop["actor"], partner=partner, card_number=member.card_number, points=300, external_id="H-1"
    )
    member.refresh_from_db()
    assert (hold.state, member.available, member.reserved) == ("held", 700, 300)
    redeem = partner_hold_confirm(actor=shop["actor"], partner=partner, reservation=hold)
    assert (redeem.points, redeem.partner_amount, redeem.partner_id) == (300, D("2.85"), partner.pk)
    assert partner_hold_confirm(actor=shop["actor"], partner=partner, reservation=hold) == redeem
    with pytest.raises(Conflict) as confirmed:
        partner_hold_cancel(actor=shop["actor"], partner=partner, reservation=hold)
    assert confirmed.value.code == "reservation_confirmed"

    second = partner_hold(
        actor=shop["actor"], partner=partner, card_number=member.card_number, points=100, external_id="H-2"
    )
    cancelled = partner_hold_cancel(actor=shop["actor"], partner=partner, reservation=second)
    member.refresh_from_db()
    assert (cancelled.state, member.available, member.reserved) == ("cancelled", 700, 0)
    with pytest.raises(Conflict) as not_held:
        partner_hold_confirm(actor=shop["actor"], partner=partner, reservation=second)
    assert not_held.value.code == "reservation_not_held"

    other, _user = partner_with_user(shop["programme"], code="other")
    third = partner_hold(
        actor=shop["actor"], partner=partner, card_number=member.card_number, points=10, external_id="H-3"
    )
    with pytest.raises(NotFound):
        partner_hold_confirm(actor=None, partner=other, reservation=third)
    # A hold left alone times out (the programme's 15 minutes) and can no longer be confirmed.
    _frozen.shift(16 * 60)
    with pytest.raises(Conflict):
        partner_hold_confirm(actor=shop["actor"], partner=partner, reservation=third)


# -- reversals ---------------------------------------------------------------------------------------


def test_reverse_own_transactions_within_thirty_days(shop: dict[str, Any], _frozen: Any) -> None:
    partner, member = shop["partner"], shop["member"]
    earn = partner_earn(
        actor=shop["actor"], partner=partner, card_number=member.card_number, points=81, external_id="R"
    )
    burn = partner_burn(
        actor=shop["actor"], partner=partner, card_number=member.card_number, points=40, external_id="B"
    )
    assert earn.transaction is not None
    reversal = partner_reverse(
        actor=shop["actor"], partner=partner, transaction_to_reverse=earn.transaction, reason="till error"
    )
    assert (reversal.kind, reversal.points, reversal.partner_amount, reversal.partner_id) == (
        "reverse",
        81,
        D("1.00"),
        partner.pk,
    )
    assert reversal.reversal_of == earn.transaction
    issuance = PointsEntry.objects.filter(transaction=reversal, account="partner_issuance")
    assert [(e.points, e.partner_id) for e in issuance] == [(81, partner.pk)]
    again = partner_reverse(
        actor=shop["actor"], partner=partner, transaction_to_reverse=earn.transaction, reason="x"
    )
    assert again == reversal and PointsTransaction.objects.filter(kind="reverse").count() == 1
    assert AuditLog.objects.filter(action="loyalty.partner_reversal", actor_id=shop["user"].pk).count() == 1
    member.refresh_from_db()
    assert member.available == 1_000 - 40

    _frozen.shift(30 * 24 * 3600 + 1)
    with pytest.raises(Conflict) as late:
        partner_reverse(actor=shop["actor"], partner=partner, transaction_to_reverse=burn, reason="late")
    assert late.value.code == "reversal_window_closed"
    other, _user = partner_with_user(shop["programme"], code="other")
    with pytest.raises(NotFound):
        partner_reverse(actor=None, partner=other, transaction_to_reverse=burn, reason="not mine")
    with pytest.raises(ValidationFailed) as not_reversible:
        partner_reverse(actor=shop["actor"], partner=partner, transaction_to_reverse=reversal, reason="twice")
    assert not_reversible.value.code == "not_reversible"
    assert PointsTransaction.objects.filter(kind="reverse").count() == 1


def test_burn_reversal_gives_the_points_back(shop: dict[str, Any]) -> None:
    partner, member = shop["partner"], shop["member"]
    burn = partner_burn(
        actor=shop["actor"], partner=partner, card_number=member.card_number, points=99, external_id="B"
    )
    reversal = partner_reverse(
        actor=shop["actor"], partner=partner, transaction_to_reverse=burn, reason="refund"
    )
    member.refresh_from_db()
    assert (member.available, reversal.partner_amount) == (1_000, D("0.94"))  # 99 × 0.0095 = 0.9405
    redemption = PointsEntry.objects.filter(transaction=reversal, account="partner_redemption")
    assert [e.points for e in redemption] == [-99]


# -- member look-up ------------------------------------------------------------------------------------


def test_masked_member_shows_no_personal_data(shop: dict[str, Any]) -> None:
    member = shop["member"]
    tier = TierFactory(programme=shop["programme"], code="gold", name_it="Oro", name_en="Gold")
    member.tier = tier
    member.save(update_fields=["tier"])
    found = member_for_card(partner=shop["partner"], card_number=" 9000 0000 0000 0001 ")
    masked = masked_member(found, language="it")
    assert (masked.card_number, masked.initial, masked.tier_name, masked.available, masked.currency_name) == (
        "9000000000000001",
        "M.",
        "Oro",
        1_000,
        "punti",
    )
    assert "Rossi" not in repr(masked) and "@" not in repr(masked)


# -- the accounts facade functions this area added ------------------------------------------------------


def test_scoped_token_facade_validates_and_scopes_revocation(shop: dict[str, Any]) -> None:
    from fedele.accounts import facade

    allowed = frozenset({"loyalty:partner:read"})
    user = shop["user"]
    for scopes, name, days in (
        (["read"], "x", None),
        ([], "x", None),
        (["loyalty:partner:read"], " ", None),
        (["loyalty:partner:read"], "x", 0),
        (["loyalty:partner:read"], "x", 3651),
    ):
        with pytest.raises(ValidationFailed):
            facade.scoped_api_token_create(
                user_id=user.pk, name=name, scopes=scopes, allowed_scopes=allowed, expires_in_days=days
            )
    inactive = user_with_roles("partner", is_active=False)
    with pytest.raises(NotFound):
        facade.scoped_api_token_create(
            user_id=inactive.pk, name="x", scopes=["loyalty:partner:read"], allowed_scopes=allowed
        )
    assert not ApiToken.objects.exists()
    plain, summary = facade.scoped_api_token_create(
        user_id=user.pk,
        name="tills",
        scopes=["loyalty:partner:read"],
        allowed_scopes=allowed,
        expires_in_days=30,
    )
    assert plain.startswith(f"fdl_{summary.prefix}_") and summary.expires_at == at(2026, 4, 9)
    assert [t.public_id for t in facade.scoped_api_tokens([user.pk])] == [summary.public_id]
    for token_id, owners in (("not-a-uuid", [user.pk]), (str(summary.public_id), [inactive.pk])):
        with pytest.raises(NotFound):
            facade.revoke_api_token(token_public_id=token_id, user_ids=owners)
    assert ApiToken.objects.get(public_id=summary.public_id).revoked_at is None
    first = facade.revoke_api_token(token_public_id=str(summary.public_id), user_ids=[user.pk])
    again = facade.revoke_api_token(token_public_id=str(summary.public_id), user_ids=[user.pk])
    assert first.revoked_at == again.revoked_at == NOW and not again.active
    assert AuditLog.objects.filter(action="api_token.revoked", object_id=str(summary.public_id)).count() == 1
    with pytest.raises(NotFound):
        facade.create_organisation_user(
            organisation_id=999_999, email="a@b.example", role=facade.Role.PARTNER
        )
