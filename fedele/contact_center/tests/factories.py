"""Factories for contact-center rows. Behaviour tests create interactions through the services;
these build plain rows for selectors, pages and set-up."""

from __future__ import annotations

import factory
from django.utils import timezone

from fedele.accounts.tests.factories import UserFactory
from fedele.contact_center.models import (
    Agent,
    AgentSkill,
    AgentState,
    Channel,
    Direction,
    Interaction,
    InteractionState,
    Queue,
    Skill,
    WrapUpCode,
)
from fedele.shared import sequences


class SkillFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Skill
        django_get_or_create = ("code",)

    code = factory.Sequence(lambda n: f"skill-{n}")
    name_it = factory.LazyAttribute(lambda o: o.code)
    name_en = factory.LazyAttribute(lambda o: o.code)


class QueueFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Queue
        django_get_or_create = ("code",)

    code = factory.Sequence(lambda n: f"queue-{n}")
    name_it = factory.LazyAttribute(lambda o: o.code)
    name_en = factory.LazyAttribute(lambda o: o.code)
    channels = factory.LazyFunction(lambda: ["voice", "chat", "email", "sms", "social"])


class AgentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Agent

    user = factory.SubFactory(UserFactory)
    display_name = factory.Sequence(lambda n: f"Agent {n}")
    state = AgentState.OFFLINE


class AgentSkillFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = AgentSkill

    agent = factory.SubFactory(AgentFactory)
    skill = factory.SubFactory(SkillFactory)
    proficiency = 3


class WrapUpCodeFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = WrapUpCode
        django_get_or_create = ("code",)

    code = factory.Sequence(lambda n: f"wrap-{n}")
    name_it = factory.LazyAttribute(lambda o: o.code)
    name_en = factory.LazyAttribute(lambda o: o.code)


class InteractionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Interaction

    number = factory.LazyFunction(lambda: sequences.next_number("I"))
    channel = Channel.VOICE
    direction = Direction.INBOUND
    state = InteractionState.QUEUED
    created_at = factory.LazyFunction(timezone.now)
