"""The /api/v1/ instance: kernel error handling plus every module's router."""

from __future__ import annotations

from fedele.accounts.api import router as accounts_router
from fedele.accounts.auth import ApiTokenAuth, WebSessionAuth
from fedele.billing.api import router as billing_router
from fedele.contact_center.api import router as contact_center_router
from fedele.customers.api import router as customers_router
from fedele.field_service.api import router as field_service_router
from fedele.loyalty.api import router as loyalty_router
from fedele.shared.api import build_api
from fedele.shared.api_routes import router as kernel_router
from fedele.support.api import router as support_router

api = build_api(auth=[ApiTokenAuth(), WebSessionAuth()])
api.add_router("/", accounts_router)
api.add_router("/", customers_router)
api.add_router("/billing/", billing_router)
api.add_router("/support/", support_router)
api.add_router("/loyalty/", loyalty_router)
api.add_router("/contact-center/", contact_center_router)
api.add_router("/field-service/", field_service_router)
api.add_router("/", kernel_router)
