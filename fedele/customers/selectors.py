"""Every read of the customers module, scoped to what the actor may see."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Count, Q, QuerySet

from fedele.accounts.facade import Actor
from fedele.customers.contracts import CustomerStatus, Segment
from fedele.customers.models import ConsentRecord, Contact, Customer, CustomerImport, TimelineEntry
from fedele.shared.errors import NotFound

ORDERINGS = {"name": "display_name", "created_at": "created_at", "number": "number", "city": "city"}
SEARCH_TERMS_MAX = 5


def customer_queryset_for(actor: Actor | None) -> QuerySet[Customer]:
    """The customers this actor may see: all for staff with the permission, own for portal and partners."""
    queryset = Customer.objects.all()
    if actor is None:
        return queryset.none()
    if actor.is_internal and actor.can("customers.view_customer"):
        return queryset
    if actor.is_portal_customer:
        # A subquery, not a join + DISTINCT: PostgreSQL refuses SELECT ... FOR UPDATE with DISTINCT.
        own = Contact.objects.filter(portal_user_id=actor.user_id).values("customer_id")
        return queryset.filter(pk__in=own)
    if actor.is_partner and actor.organisation_id is not None and actor.can("customers.view_customer"):
        return queryset.filter(managed_by_id=actor.organisation_id)
    return queryset.none()


def contact_queryset_for(actor: Actor | None) -> QuerySet[Contact]:
    return Contact.objects.filter(customer__in=customer_queryset_for(actor)).select_related("customer")


@dataclass(frozen=True, slots=True)
class CustomerFilters:
    search: str = ""
    segment: str = ""
    kind: str = ""
    city: str = ""
    status: str = CustomerStatus.ACTIVE.value


def customer_list(*, actor: Actor, filters: CustomerFilters | None = None) -> QuerySet[Customer]:
    filters = filters or CustomerFilters()
    queryset = customer_queryset_for(actor)
    if filters.status:
        queryset = queryset.filter(status=filters.status)
    if filters.segment:
        queryset = queryset.filter(segment=filters.segment)
    if filters.kind:
        queryset = queryset.filter(kind=filters.kind)
    if filters.city:
        queryset = queryset.filter(city__iexact=filters.city)
    if filters.search:
        for term in filters.search.lower().split()[:SEARCH_TERMS_MAX]:
            queryset = queryset.filter(search_text__contains=term)
    return queryset


def customer_ids_matching(query: str, *, limit: int) -> list[int]:
    """Internal keys of the customers a free-text query finds, lowest key first, at most ``limit``.
    An e-mail address (it has an "@") matches the e-mail of the active customer who holds it, in any
    case (the unique index on lower(e-mail) of active customers answers it); anything else matches
    ``search_text`` (number, name, e-mail, phone, codes, city) word by word, every word required, as the
    customers list does, in any status. Not scoped: callers check their own permission."""
    from django.db.models.functions import Lower

    text = " ".join((query or "").split()).lower()
    if not text or limit <= 0:
        return []
    queryset = Customer.objects.all()
    if "@" in text and " " not in text:
        # The same expression and condition as the uniq_active_customer_email index, so it is used.
        queryset = (
            queryset.annotate(email_lower=Lower("email"))
            .filter(email_lower=text, status=CustomerStatus.ACTIVE)
            .exclude(email="")
        )
    else:
        for term in text.split()[:SEARCH_TERMS_MAX]:
            queryset = queryset.filter(search_text__contains=term)
    return list(queryset.order_by("id").values_list("id", flat=True)[:limit])


def customer_get(*, actor: Actor, public_id: str) -> Customer:
    customer = customer_queryset_for(actor).filter(public_id=public_id).first()
    if customer is None:
        raise NotFound("Customer not found.")
    return customer


def customer_stats(*, actor: Actor) -> dict[str, int]:
    queryset = customer_queryset_for(actor)
    result = queryset.aggregate(
        total=Count("pk", filter=Q(status=CustomerStatus.ACTIVE)),
        companies=Count("pk", filter=Q(status=CustomerStatus.ACTIVE, kind="company")),
        persons=Count("pk", filter=Q(status=CustomerStatus.ACTIVE, kind="person")),
    )
    return {key: int(value or 0) for key, value in result.items()}


def customer_count_by_segment(actor: Actor) -> dict[str, int]:
    """Active customers per segment, every segment present (zero when empty), in the segments' order."""
    rows = (
        customer_queryset_for(actor)
        .filter(status=CustomerStatus.ACTIVE)
        .order_by()
        .values_list("segment")
        .annotate(total=Count("pk"))
    )
    counts = {str(segment): int(total) for segment, total in rows}
    return {segment.value: counts.get(segment.value, 0) for segment in Segment}


def contact_list(*, actor: Actor, customer_public_id: str) -> QuerySet[Contact]:
    customer = customer_get(actor=actor, public_id=customer_public_id)
    return customer.contacts.all()


def consent_current(*, customer: Customer) -> dict[tuple[str, str], ConsentRecord]:
    """The consent in force per (channel, purpose): the latest record of each."""
    current: dict[tuple[str, str], ConsentRecord] = {}
    for record in customer.consents.order_by("-recorded_at", "-id"):
        current.setdefault((record.channel, record.purpose), record)
    return current


def consent_history(*, customer: Customer) -> QuerySet[ConsentRecord]:
    return customer.consents.select_related("contact").order_by("-recorded_at", "-id")


def timeline_list(*, customer: Customer, module: str = "", limit: int = 100) -> QuerySet[TimelineEntry]:
    queryset = customer.timeline.all()
    if module:
        queryset = queryset.filter(module=module)
    return queryset.order_by("-occurred_at", "-id")[:limit]


# --- imports, duplicates (customer data operations) --------------------------------------------------


def customer_import_queryset_for(actor: Actor) -> QuerySet[CustomerImport]:
    """Imports the actor may see: all for staff who may import, their own for anyone else who may."""
    queryset = CustomerImport.objects.all()
    if not actor.can("customers.import_customers"):
        return queryset.none()
    if actor.is_internal:
        return queryset
    return queryset.filter(created_by_id=actor.user_id)


def customer_import_get(*, actor: Actor, public_id: str) -> CustomerImport:
    customer_import = customer_import_queryset_for(actor).filter(public_id=public_id).first()
    if customer_import is None:
        raise NotFound("Import not found.")
    return customer_import


REASON_SAME_EMAIL = "same e-mail"
REASON_SAME_PHONE = "same phone"
REASON_SAME_FISCAL_CODE = "same fiscal code"
REASON_SAME_VAT_NUMBER = "same VAT number"
REASON_SIMILAR_NAME = "similar name in the same city"
DUPLICATE_WEIGHTS = {
    REASON_SAME_FISCAL_CODE: 50,
    REASON_SAME_VAT_NUMBER: 50,
    REASON_SAME_EMAIL: 40,
    REASON_SAME_PHONE: 30,
    REASON_SIMILAR_NAME: 25,
}
NAME_SIMILARITY = 0.85
MAX_DUPLICATE_CANDIDATES = 20
_LEGAL_FORMS = frozenset({"spa", "srl", "srls", "sas", "snc", "sapa", "scarl", "coop", "ltd", "inc", "gmbh"})


@dataclass(frozen=True, slots=True)
class DuplicateCandidate:
    """Another active customer that may be the same one: score 0-100 and why."""

    customer: Customer
    score: int
    reasons: tuple[str, ...]


def comparable_name(name: str) -> str:
    """Lower case, no accents or punctuation, no legal form, words sorted ('Rossi Mario' = 'Mario Rossi')."""
    import unicodedata

    decomposed = unicodedata.normalize("NFKD", name or "")
    plain = "".join(c for c in decomposed if not unicodedata.combining(c)).lower()
    words = "".join(c if c.isalnum() else " " for c in plain.replace(".", "")).split()
    return " ".join(sorted(w for w in words if w not in _LEGAL_FORMS))


def names_are_similar(first: str, second: str) -> bool:
    from difflib import SequenceMatcher

    a, b = comparable_name(first), comparable_name(second)
    if not a or not b:
        return False
    return a == b or SequenceMatcher(None, a, b).ratio() >= NAME_SIMILARITY


def _reachable_at(customer: Customer) -> tuple[set[str], set[str]]:
    """E-mail addresses and phone numbers of a customer and of its contacts (contacts prefetched)."""
    emails = {customer.email.lower()} if customer.email else set()
    phones = {customer.phone} if customer.phone else set()
    for contact in customer.contacts.all():
        if contact.email:
            emails.add(contact.email.lower())
        phones.update(number for number in (contact.phone, contact.mobile) if number)
    return emails, phones


def customer_find_duplicates(*, actor: Actor, customer_public_id: str) -> list[DuplicateCandidate]:
    """Active customers the actor may see that share a code, an e-mail or a phone (theirs or their
    contacts'), or have a similar name in the same city. Needs the merge permission. Best first."""
    from django.db.models import Prefetch

    from fedele.shared.errors import PermissionDenied

    customer = customer_get(actor=actor, public_id=customer_public_id)
    if not actor.can("customers.merge_customers"):
        raise PermissionDenied("You do not have permission for this action.")
    contacts = Prefetch("contacts", queryset=Contact.objects.only("customer_id", "email", "phone", "mobile"))
    customer = Customer.objects.prefetch_related(contacts).get(pk=customer.pk)
    emails, phones = _reachable_at(customer)
    matches = Q(pk__in=[])
    if emails:
        by_contact_email = Contact.objects.filter(email__in=emails).values("customer_id")
        matches |= Q(email__in=emails) | Q(pk__in=by_contact_email)
    if phones:
        by_contact_phone = Contact.objects.filter(Q(phone__in=phones) | Q(mobile__in=phones)).values(
            "customer_id"
        )
        matches |= Q(phone__in=phones) | Q(pk__in=by_contact_phone)
    if customer.fiscal_code:
        matches |= Q(fiscal_code=customer.fiscal_code)
    if customer.vat_number:
        matches |= Q(vat_number=customer.vat_number)
    name_words = comparable_name(customer.display_name).split()
    if customer.city and name_words:
        # Narrow in the database on the longest word of the name, then compare whole names in Python.
        longest = max(name_words, key=len)
        matches |= Q(city__iexact=customer.city, search_text__contains=longest[:4])
    candidates = (
        customer_queryset_for(actor)
        .filter(status=CustomerStatus.ACTIVE)
        .exclude(pk=customer.pk)
        .filter(matches)
        .prefetch_related(contacts)
        .order_by("id")[:500]
    )
    found: list[DuplicateCandidate] = []
    for candidate in candidates:
        candidate_emails, candidate_phones = _reachable_at(candidate)
        reasons: list[str] = []
        if emails & candidate_emails:
            reasons.append(REASON_SAME_EMAIL)
        if phones & candidate_phones:
            reasons.append(REASON_SAME_PHONE)
        if customer.fiscal_code and candidate.fiscal_code == customer.fiscal_code:
            reasons.append(REASON_SAME_FISCAL_CODE)
        if customer.vat_number and candidate.vat_number == customer.vat_number:
            reasons.append(REASON_SAME_VAT_NUMBER)
        if (
            customer.city
            and candidate.city.lower() == customer.city.lower()
            and names_are_similar(candidate.display_name, customer.display_name)
        ):
            reasons.append(REASON_SIMILAR_NAME)
        if reasons:
            score = min(100, sum(DUPLICATE_WEIGHTS[reason] for reason in reasons))
            found.append(DuplicateCandidate(candidate, score, tuple(reasons)))
    found.sort(key=lambda c: (-c.score, c.customer.number))
    return found[:MAX_DUPLICATE_CANDIDATES]
