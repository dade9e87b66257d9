"""Field service demo data: four technicians (the demo technician's login is one of them), about twenty
units at the demo customers' sites and sixteen work orders in every status, with windows around now
(today and tomorrow in Europe/Rome). Everything goes through the real services at the moment it
happens (``clock.travel_to``): numbers, history, audit and the events support consumes are what the
product makes.

Idempotent: nothing is added when the demo technicians exist.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from fedele.customers.facade import customer_summary
from fedele.field_service.models import Technician, WorkOrder
from fedele.field_service.services import installed_base, work_orders
from fedele.shared import clock
from fedele.shared.demo import DemoContext

ROME = ZoneInfo("Europe/Rome")
TECHNICIANS = [
    ("Luca Gallo", "+393351112233", "technician@fedele.demo", "Via Emilia 120, Bologna"),
    ("Andrea Marino", "+393471234567", "andrea.marino@fedele.example", "Via Tiburtina 300, Roma"),
    ("Elena Rinaldi", "+393289876543", "elena.rinaldi@fedele.example", "Corso Francia 80, Torino"),
    ("Giorgio Lombardi", "+393405551234", "giorgio.lombardi@fedele.example", "Viale Monza 40, Milano"),
]
UNITS = [
    ("Caldaia Vaillant ecoTEC plus 25", "boiler", "Vaillant", "VMW 25", 24),
    ("Caldaia Baxi Luna Duo-tec E 28", "boiler", "Baxi", "LDT-E28", 24),
    ("Router Fritz!Box 7530", "router", "AVM", "FB7530", 24),
    ("Modem fibra ZTE F6640", "router", "ZTE", "F6640", 12),
    ("Contatore gas G4 smart", "meter", "Pietro Fiorentini", "SSM-G4", 60),
    ("Pompa di calore Daikin Altherma 3", "heat_pump", "Daikin", "ERGA06", 36),
    ("Condizionatore Mitsubishi MSZ-LN25", "air_conditioner", "Mitsubishi Electric", "MSZ-LN25VG", 36),
]
# (status, day from today (None: no window), window start hour in Rome, technician index, kind,
# priority, category of the unit it is about (None: no unit), summary). Windows are two hours in
# working hours, and no technician has two at once.
ORDERS: list[tuple[str, int | None, int, int | None, str, str, str | None, str]] = [
    ("completed", -3, 11, 3, "installation", "normal", "meter", "Installazione contatore smart"),
    ("completed", -1, 9, 0, "repair", "normal", "boiler", "Caldaia in blocco, codice F28"),
    ("completed", -1, 14, 1, "maintenance", "normal", "boiler", "Manutenzione annuale caldaia"),
    ("in_progress", 0, 9, 2, "repair", "high", "boiler", "Perdita d'acqua dalla caldaia"),
    ("en_route", 0, 11, 0, "repair", "urgent", "heat_pump", "Nessun riscaldamento, anziano in casa"),
    ("dispatched", 0, 14, 1, "installation", "normal", "router", "Installazione router fibra"),
    ("dispatched", 0, 16, 3, "inspection", "normal", "meter", "Verifica contatore gas"),
    ("cancelled", 0, 14, 2, "maintenance", "low", "air_conditioner", "Manutenzione programmata"),
    ("scheduled", 1, 9, 0, "maintenance", "low", "air_conditioner", "Pulizia filtri climatizzatore"),
    ("scheduled", 1, 11, 2, "repair", "normal", "router", "Modem si riavvia di continuo"),
    ("scheduled", 1, 14, 3, "installation", "normal", None, "Installazione pompa di calore"),
    ("on_hold", 1, 16, 3, "repair", "normal", "boiler", "Scheda elettronica da sostituire"),
    ("scheduled", 2, 9, 1, "repair", "high", "heat_pump", "Rumore anomalo dalla pompa di calore"),
    ("scheduled", 2, 11, None, "inspection", "normal", None, "Sopralluogo per nuovo impianto"),
    ("new", None, 0, None, "repair", "normal", "meter", "Spia rossa sul contatore"),
    ("new", None, 0, None, "installation", "low", "router", "Spostamento presa fibra"),
]


def _slot(day: int, hour: int) -> tuple[datetime, datetime]:
    """A two-hour window from ``hour``:00 (Rome) on today + ``day``."""
    today = clock.local(clock.now(), "Europe/Rome").date() + timedelta(days=day)
    start = datetime(today.year, today.month, today.day, hour, tzinfo=ROME)
    return start, start + timedelta(hours=2)


def _at(moment: datetime) -> datetime:
    """When a step happened: never later than now (a visit of today's early hours seen at dawn has
    all its steps done by now)."""
    return min(moment, clock.now())


def _technicians(context: DemoContext) -> list[Technician]:
    made = []
    for name, phone, email, base in TECHNICIANS:
        user = context.users.get(email)
        made.append(
            installed_base.technician_create(
                actor=None,
                display_name=name,
                phone=phone,
                email=email,
                home_base_address=base,
                user_id=user.pk if user is not None else None,
            )
        )
    return made


def _equipment(context: DemoContext, rng: random.Random) -> list[tuple[str, str, str]]:
    """(customer public id, equipment public id, category) for about twenty units at the first demo
    customers."""
    customers = [str(key) for key in list(context.records.get("customers", []))[:14]]
    units: list[tuple[str, str, str]] = []
    today = clock.today()
    for index, customer_id in enumerate(customers):
        if customer_summary(customer_id) is None:
            continue
        for extra in range(1 + (index % 3 == 0)):
            name, category, manufacturer, model_code, warranty = UNITS[(index + extra * 3) % len(UNITS)]
            installed = today - timedelta(days=rng.randint(20, 1500))
            equipment = installed_base.equipment_register(
                actor=None,
                customer_public_id=customer_id,
                serial_number=f"{manufacturer[:3].upper()}-{rng.randint(100000, 999999)}-{index}{extra}",
                name=name,
                category=category,
                manufacturer=manufacturer,
                model_code=model_code,
                installed_on=installed,
                warranty_months=warranty,
            )
            units.append((customer_id, str(equipment.public_id), category))
    return units


def _order(
    spec: tuple[str, int | None, int, int | None, str, str, str | None, str],
    unit: tuple[str, str, str] | None,
    customer_id: str,
    technicians: list[Technician],
) -> WorkOrder | None:
    status, day, hour, technician_index, kind, priority, _, summary = spec
    technician = technicians[technician_index] if technician_index is not None else None
    window = _slot(day, hour) if day is not None else None
    opened_at = _at((window[0] if window else clock.now()) - timedelta(days=2))
    with clock.travel_to(opened_at):
        order = work_orders.work_order_create(
            actor=None,
            customer_public_id=customer_id,
            summary=summary,
            kind=kind,
            priority=priority,
            equipment_public_id=unit[1] if unit else None,
            window_start=window[0] if window else None,
            window_end=window[1] if window else None,
            technician_public_id=str(technician.public_id) if technician else None,
        )
    key = str(order.public_id)
    if status in ("new", "scheduled") or window is None:
        return order
    start = window[0]
    if status == "cancelled":
        with clock.travel_to(_at(start - timedelta(hours=20))):
            return work_orders.work_order_cancel(
                actor=None, work_order_public_id=key, reason="Il cliente ha risolto da solo"
            )
    if status == "on_hold":
        with clock.travel_to(_at(start - timedelta(hours=20))):
            return work_orders.work_order_hold(
                actor=None, work_order_public_id=key, reason="In attesa del ricambio dal fornitore"
            )
    with clock.travel_to(_at(start - timedelta(hours=1))):
        work_orders.work_order_dispatch(actor=None, work_order_public_id=key)
    if status == "dispatched":
        return order
    with clock.travel_to(_at(start - timedelta(minutes=25))):
        work_orders.work_order_en_route(
            actor=None, work_order_public_id=key, eta=max(start + timedelta(minutes=10), clock.now())
        )
    if status == "en_route":
        return order
    with clock.travel_to(_at(start + timedelta(minutes=10))):
        work_orders.work_order_start(actor=None, work_order_public_id=key)
    if status == "in_progress":
        return order
    with clock.travel_to(_at(start + timedelta(minutes=80))):
        return work_orders.work_order_complete(
            actor=None,
            work_order_public_id=key,
            resolution="Intervento eseguito, impianto verificato e funzionante.",
        )


def load(context: DemoContext) -> None:
    if Technician.objects.filter(email=TECHNICIANS[0][2]).exists():
        return
    rng = random.Random(context.seed + 300)  # noqa: S311  (reproducible demo data, not security)
    # Set up a day before the first visit, so the history reads in order.
    with clock.travel_to(clock.now() - timedelta(days=3)):
        technicians = _technicians(context)
        units = _equipment(context, rng)
    customers = [str(key) for key in list(context.records.get("customers", []))]
    made = 0
    used: dict[str, int] = {}
    for index, spec in enumerate(ORDERS):
        category = spec[6]
        matching = [unit for unit in units if unit[2] == category]
        unit = None
        if matching:  # the units of that kind in turn, so the orders spread over customers
            unit = matching[used.get(category or "", 0) % len(matching)]
            used[category or ""] = used.get(category or "", 0) + 1
        customer_id = unit[0] if unit else (customers[(index * 7) % len(customers)] if customers else "")
        if not customer_id:
            break
        if _order(spec, unit, customer_id, technicians) is not None:
            made += 1
        context.progress("work orders", index + 1, len(ORDERS))
    context.counts["technicians"] = len(technicians)
    context.counts["equipment"] = len(units)
    context.counts["work_orders"] = made
