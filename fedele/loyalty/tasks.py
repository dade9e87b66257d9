"""Celery finds loyalty's tasks here; each area keeps its own in fedele/loyalty/jobs/."""

from fedele.loyalty.jobs import club, evaluation, fraud, ledger, partners, programmes, rewards, rules

__all__ = ["club", "evaluation", "fraud", "ledger", "partners", "programmes", "rewards", "rules"]
