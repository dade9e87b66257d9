"""Contact-center tables, one file per area (each area's migration is its own file in the chain)."""

from fedele.contact_center.models.core import *  # noqa: F403
from fedele.contact_center.models.desktop import *  # noqa: F403
from fedele.contact_center.models.dialer import *  # noqa: F403
from fedele.contact_center.models.ivr import *  # noqa: F403
from fedele.contact_center.models.messaging import *  # noqa: F403
from fedele.contact_center.models.routing import *  # noqa: F403
from fedele.contact_center.models.telephony import *  # noqa: F403
