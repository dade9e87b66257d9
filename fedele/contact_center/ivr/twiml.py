"""IVR steps rendered as TwiML for Twilio's voice webhooks.

``say`` → ``<Say language="it-IT">``; ``play`` → ``<Play>`` of the prompt file under the prompts URL;
``collect`` → ``<Gather input="dtmf">`` posting the keys to ``gather_action`` (the prompts just before
it, which the caller may interrupt, are nested inside so keys typed during them count), followed by a
``<Redirect>`` to the same URL with ``timeout=1`` for when nothing was typed; ``queue`` → ``<Enqueue>``
with the wait URL (hold music and position announcements); ``voicemail`` → ``<Record>`` posting to
``record_action``; ``transfer`` → ``<Dial>`` of a number or ``<Sip>`` URI; ``hangup`` → ``<Hangup/>``.

Every text is XML-escaped; relative URLs are made absolute from ``settings.FEDELE_PUBLIC_URL`` (Twilio
calls back from the internet, and the signature covers the full URL).
"""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import urlencode
from xml.sax.saxutils import escape, quoteattr

from django.conf import settings

from fedele.contact_center.ivr.steps import IvrStep, StepKind

__all__ = ["TWILIO_LANGUAGES", "absolute_url", "render_twiml"]

TWILIO_LANGUAGES = {"it": "it-IT", "en": "en-US"}
PROMPTS_PATH = "/static/contact_center/prompts/"


def absolute_url(url: str) -> str:
    if url.startswith(("http://", "https://")):
        return url
    base = str(getattr(settings, "FEDELE_PUBLIC_URL", "")).rstrip("/")
    return f"{base}/{url.lstrip('/')}"


def _with_query(url: str, **params: str) -> str:
    return f"{url}{'&' if '?' in url else '?'}{urlencode(params)}"


def _say(step: IvrStep) -> str:
    language = TWILIO_LANGUAGES.get(step.language, "it-IT")
    return f"<Say language={quoteattr(language)}>{escape(step.text)}</Say>"


def _play(step: IvrStep, prompts_url: str) -> str:
    return f"<Play>{escape(absolute_url(prompts_url.rstrip('/') + '/' + step.audio))}</Play>"


def _prompt(step: IvrStep, prompts_url: str) -> str:
    return _play(step, prompts_url) if step.kind == StepKind.PLAY and step.audio else _say(step)


def render_twiml(
    steps: Sequence[IvrStep],
    *,
    gather_action: str,
    queue_wait_url: str = "",
    record_action: str = "",
    prompts_url: str = "",
) -> str:
    """The TwiML document for the steps of one engine turn. Audio prompts are served from
    ``prompts_url`` (default ``settings.FEDELE_IVR_PROMPTS_URL``, else /static/contact_center/prompts/)."""
    prompts_url = prompts_url or str(getattr(settings, "FEDELE_IVR_PROMPTS_URL", "") or PROMPTS_PATH)
    verbs: list[str] = []
    index = 0
    while index < len(steps):
        step = steps[index]
        if step.kind in (StepKind.SAY, StepKind.PLAY):
            # Prompts that belong to the next collect go inside its Gather.
            if step.params.get("barge_in"):
                nested: list[str] = []
                while index < len(steps) and steps[index].kind in (StepKind.SAY, StepKind.PLAY):
                    nested.append(_prompt(steps[index], prompts_url))
                    index += 1
                if index < len(steps) and steps[index].kind == StepKind.COLLECT:
                    verbs.extend(_gather(steps[index], nested, gather_action))
                    index += 1
                else:
                    verbs.extend(nested)
                continue
            verbs.append(_prompt(step, prompts_url))
        elif step.kind == StepKind.COLLECT:
            verbs.extend(_gather(step, [], gather_action))
        elif step.kind == StepKind.QUEUE:
            attributes = f" waitUrl={quoteattr(absolute_url(queue_wait_url))}" if queue_wait_url else ""
            verbs.append(f"<Enqueue{attributes}>{escape(str(step.params.get('queue_code', '')))}</Enqueue>")
        elif step.kind == StepKind.VOICEMAIL:
            record = [
                f"maxLength={quoteattr(str(int(step.params.get('max_seconds', 120))))}",
                'finishOnKey="#"',
                'playBeep="true"',
            ]
            if record_action:
                record.insert(0, f"action={quoteattr(absolute_url(record_action))}")
            verbs.append(f"<Record {' '.join(record)}/>")
        elif step.kind == StepKind.TRANSFER:
            target = str(step.params.get("target", ""))
            inner = f"<Sip>{escape(target)}</Sip>" if target.startswith(("sip:", "sips:")) else escape(target)
            verbs.append(f"<Dial>{inner}</Dial>")
        elif step.kind == StepKind.HANGUP:
            verbs.append("<Hangup/>")
        index += 1
    body = "".join(verbs)
    return f'<?xml version="1.0" encoding="UTF-8"?><Response>{body}</Response>'


def _gather(step: IvrStep, nested: list[str], gather_action: str) -> list[str]:
    action = absolute_url(gather_action)
    attributes = [
        'input="dtmf"',
        f"action={quoteattr(action)}",
        'method="POST"',
        f"numDigits={quoteattr(str(int(step.params.get('max_digits', 1))))}",
        f"timeout={quoteattr(str(int(step.params.get('timeout_seconds', 5))))}",
    ]
    # An empty finishOnKey turns Twilio's default (#) off.
    attributes.append(f"finishOnKey={quoteattr(str(step.params.get('finish_on', '')))}")
    gather = f"<Gather {' '.join(attributes)}>{''.join(nested)}</Gather>"
    # Twilio continues past a Gather that heard nothing: tell the engine it timed out.
    timeout_redirect = f'<Redirect method="POST">{escape(_with_query(action, timeout="1"))}</Redirect>'
    return [gather, timeout_redirect]
