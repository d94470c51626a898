"""Composition root of contact-svc: builds the runtime; nothing connects at import time."""

from collect_common.clock import Clock
from collect_common.policy import PolicyBook
from collect_common.runtime import ServiceRuntime
from collect_common.security.webhooks import SqlReplayStore, WebhookVerifier
from contact_svc.adapters.sms import FileSink, HttpProvider, SmsProvider
from contact_svc.adapters.tables import metadata
from contact_svc.domain.policy import ContactPolicy
from contact_svc.entrypoints.consumer import HANDLERS, SUBSCRIBE
from contact_svc.service_layer.decisions import ContactContext, DecisionMetrics
from contact_svc.settings import Settings


def bootstrap(settings: Settings | None = None, clock: Clock | None = None) -> ServiceRuntime:
    settings = settings or Settings()
    return ServiceRuntime(
        settings=settings,
        metadata=metadata,
        migrations=settings.migrations_dir,
        handlers=HANDLERS,
        subscribe=SUBSCRIBE,
        clock=clock,
        consumer_group=settings.consumer_group,
    )


def contact_context(runtime: ServiceRuntime, settings: Settings) -> ContactContext:
    """Units of work, the ContactPolicy versions per bank contract (the configured file,
    else the defaults; a bad file stops the service at start naming the field and rule) and
    the decision metrics on the runtime's registry (call once per runtime)."""
    policies = PolicyBook(ContactPolicy)
    if settings.policy_file is not None:
        policies = PolicyBook.load(ContactPolicy, settings.policy_file)
    return ContactContext(
        uow_factory=runtime.uow,
        policies=policies,
        metrics=DecisionMetrics(runtime.registry, runtime.service),
    )


def webhook_secrets(spec: str) -> dict[str, bytes]:
    """``key_id:secret`` pairs, comma- or semicolon-separated (several during a rotation)."""
    secrets: dict[str, bytes] = {}
    for position, item in enumerate(spec.replace(";", ",").split(",")):
        item = item.strip()
        if not item:
            continue
        key_id, sep, secret = item.partition(":")
        if not sep or not key_id.strip() or not secret:
            raise ValueError(f"webhook_secrets: entry {position} is not key_id:secret")
        secrets[key_id.strip()] = secret.encode()
    if not secrets:
        raise ValueError("webhook_secrets: no key_id:secret configured")
    return secrets


def dialer_verifier(runtime: ServiceRuntime, settings: Settings) -> WebhookVerifier:
    """HMAC verification of the dialer's webhooks; replays are refused across replicas through
    the service database (``webhook_deliveries``)."""
    return WebhookVerifier(
        webhook_secrets(settings.webhook_secrets.get_secret_value()),
        runtime.clock,
        replay_store=SqlReplayStore(runtime.sessions),
    )


def sms_provider(settings: Settings) -> SmsProvider:
    """The configured SMS provider; the HTTP gateway needs its URL (checked at start)."""
    if settings.sms_provider == "http":
        if not settings.sms_http_url:
            raise ValueError("sms_http_url: required when sms_provider is http")
        return HttpProvider(
            settings.sms_http_url,
            settings.sms_http_token.get_secret_value(),
            settings.sms_http_timeout_seconds,
        )
    return FileSink(settings.sms_file_path)
