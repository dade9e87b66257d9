"""Loyalty tables, one file per area; Django finds them all through this package."""

from fedele.loyalty.models.fraud import FraudFlag
from fedele.loyalty.models.ledger import (
    MEMBER_ACCOUNTS,
    Account,
    ExpiryNotice,
    PointsEntry,
    PointsLot,
    PointsTransaction,
    Reservation,
    TransactionKind,
)
from fedele.loyalty.models.members import Household, Member, MemberStatus, TierChange
from fedele.loyalty.models.partners import Partner, PartnerSettlement
from fedele.loyalty.models.programmes import (
    ExpiryPolicy,
    NegativeBalancePolicy,
    Programme,
    ProgrammeStatus,
    Rounding,
    Tier,
    TierMetric,
    TierWindow,
)
from fedele.loyalty.models.rewards import Redemption, Reward, RewardKind, VoucherCode
from fedele.loyalty.models.rules import (
    Campaign,
    CampaignAssignment,
    EarningRule,
    EventType,
    LoyaltyEvent,
    RuleStatus,
    RuleUsage,
)

__all__ = [
    "MEMBER_ACCOUNTS",
    "Account",
    "Campaign",
    "CampaignAssignment",
    "EarningRule",
    "EventType",
    "ExpiryNotice",
    "ExpiryPolicy",
    "FraudFlag",
    "Household",
    "LoyaltyEvent",
    "Member",
    "MemberStatus",
    "NegativeBalancePolicy",
    "Partner",
    "PartnerSettlement",
    "PointsEntry",
    "PointsLot",
    "PointsTransaction",
    "Programme",
    "ProgrammeStatus",
    "Redemption",
    "Reservation",
    "Reward",
    "RewardKind",
    "Rounding",
    "RuleStatus",
    "RuleUsage",
    "Tier",
    "TierChange",
    "TierMetric",
    "TierWindow",
    "TransactionKind",
    "VoucherCode",
]
