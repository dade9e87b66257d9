"""Every write of field service: technicians and equipment (``installed_base``), work orders
(``work_orders``). Each function is one transaction: lock, validate, change, audit, outbox event."""
