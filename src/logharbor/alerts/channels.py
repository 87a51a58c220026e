"""What a notification looks like on each channel, and how generic webhooks are signed.

A message carries one or more *alerts*; an alert is one group of identical records (same
fingerprint) with how many there were and when. Discord and Slack get human text; a generic
webhook gets JSON meant for programs, signed so the receiver can trust it:

- ``X-LogHarbor-Timestamp``: Unix seconds when the request was signed.
- ``X-LogHarbor-Signature``: ``sha256=`` + hex HMAC-SHA256, keyed with the webhook's secret, of
  ``<timestamp> + "." + <raw request body bytes>``. Receivers recompute it, compare in constant
  time, and reject timestamps more than a few minutes old (replays).
- ``X-LogHarbor-Delivery``: an id per message; a retried message keeps it, so receivers can
  ignore duplicates (delivery is at least once).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from logharbor.common.timestamps import iso, utcnow

SIGNATURE_HEADER = "X-LogHarbor-Signature"
TIMESTAMP_HEADER = "X-LogHarbor-Timestamp"
DELIVERY_HEADER = "X-LogHarbor-Delivery"

# Embed colours by record level (the original's palette).
COLORS = {"INFO": 0x0EA5E9, "WARNING": 0xFB923C, "FATAL": 0xE11D48}
DISCORD_MAX_EMBEDS = 10


@dataclass(frozen=True)
class Alert:
    count: int
    first_at: str
    last_at: str
    sample: Mapping[Any, Any]
    group_key: str
    exception_id: str | None = None
    exception_state: str | None = None


def alert_from_row(row: Mapping[Any, Any]) -> Alert:
    return Alert(
        count=int(row["count"]),
        first_at=iso(row["first_at"]),
        last_at=iso(row["last_at"]),
        sample=row["sample"],
        group_key=row["group_key"],
        exception_id=row["exception_id"],
        exception_state=row["exception_state"],
    )


def sign(secret: str, timestamp: str, body: bytes) -> str:
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + digest.hexdigest()


def _url(sample: Mapping[Any, Any]) -> str:
    return f"{sample.get('domain') or ''}{sample.get('pathname') or ''}"


def _title(alert: Alert) -> str:
    s = alert.sample
    title = f"{s.get('level')} · {s.get('status')} {s.get('method')} {s.get('route')}"
    if alert.exception_state in ("new", "reopened"):
        title = f"[{alert.exception_state} exception] {title}"
    return title[:250]


def _lines(alert: Alert) -> list[str]:
    s = alert.sample
    lines = []
    if alert.count > 1:
        lines.append(f"{alert.count:,} times between {alert.first_at} and {alert.last_at}")
    else:
        lines.append(f"at {alert.last_at}")
    if s.get("message"):
        lines.append(f"Message: {s['message']}")
    lines.append(f"URL: {_url(s)}")
    lines.append(f"Elapsed time: {s.get('elapsedTime')} ms")
    lines.append(f"Record: {s.get('recordId')}")
    return lines


def _summary(source_name: str, alerts: Sequence[Alert]) -> str:
    total = sum(alert.count for alert in alerts)
    noun = "record" if total == 1 else "records"
    return f"LogHarbor · {source_name}: {total:,} {noun} in {len(alerts)} group(s)"


def discord_payload(source_name: str, alerts: Sequence[Alert]) -> dict[str, Any]:
    embeds = [
        {
            "title": _title(alert),
            "description": "\n".join(_lines(alert))[:4000],
            "color": COLORS.get(str(alert.sample.get("level")), COLORS["INFO"]),
            "timestamp": alert.last_at,
        }
        for alert in alerts[:DISCORD_MAX_EMBEDS]
    ]
    # Record text is attacker-influenced (paths, response bodies): never let it ping anyone.
    return {
        "content": _summary(source_name, alerts)[:2000],
        "embeds": embeds,
        "allowed_mentions": {"parse": []},
    }


def _slack_escape(text: str) -> str:
    # Slack reads <!channel>, <@U123> and <url|label> as commands and links; escape its three
    # control characters so record text stays text.
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_payload(source_name: str, alerts: Sequence[Alert]) -> dict[str, Any]:
    summary = _slack_escape(_summary(source_name, alerts))
    blocks: list[dict[str, Any]] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": f"*{summary}*"}}
    ]
    for alert in alerts:
        text = f"*{_slack_escape(_title(alert))}*\n" + _slack_escape("\n".join(_lines(alert)))
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": text[:2900]}})
    return {"text": summary, "blocks": blocks[:50]}


def generic_payload(
    delivery_id: str, webhook: Mapping[Any, Any], source_name: str, alerts: Sequence[Alert]
) -> dict[str, Any]:
    return {
        "type": "logharbor.alert",
        "deliveryId": delivery_id,
        "webhookId": webhook["id"],
        "trafficSourceId": webhook["traffic_source_id"],
        "trafficSourceName": source_name,
        "sentAt": iso(utcnow()),
        "alerts": [
            {
                "groupKey": alert.group_key,
                "count": alert.count,
                "firstAt": alert.first_at,
                "lastAt": alert.last_at,
                "exception": (
                    {"id": alert.exception_id, "state": alert.exception_state}
                    if alert.exception_id
                    else None
                ),
                "record": dict(alert.sample),
            }
            for alert in alerts
        ],
    }


def test_payloads(delivery_id: str, webhook: Mapping[Any, Any], source_name: str) -> dict[str, Any]:
    text = f"LogHarbor · {source_name}: test message from webhook {webhook['id']}"
    match webhook["type"]:
        case "discord":
            return {"content": text, "allowed_mentions": {"parse": []}}
        case "slack":
            return {"text": _slack_escape(text)}
        case _:
            return {
                "type": "logharbor.test",
                "deliveryId": delivery_id,
                "webhookId": webhook["id"],
                "trafficSourceId": webhook["traffic_source_id"],
                "trafficSourceName": source_name,
                "sentAt": iso(utcnow()),
                "alerts": [],
            }


def payload(
    delivery_id: str, webhook: Mapping[Any, Any], source_name: str, alerts: Sequence[Alert]
) -> dict[str, Any]:
    match webhook["type"]:
        case "discord":
            return discord_payload(source_name, alerts)
        case "slack":
            return slack_payload(source_name, alerts)
        case _:
            return generic_payload(delivery_id, webhook, source_name, alerts)


def encode(
    delivery_id: str, webhook: Mapping[Any, Any], document: Mapping[Any, Any], timestamp: int
) -> tuple[bytes, dict[str, str]]:
    """The request body and headers; generic webhooks are signed."""
    body = json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode()
    headers = {"Content-Type": "application/json"}
    if webhook["type"] == "webhook":
        stamp = str(timestamp)
        headers[TIMESTAMP_HEADER] = stamp
        headers[SIGNATURE_HEADER] = sign(webhook["secret"], stamp, body)
        headers[DELIVERY_HEADER] = delivery_id
    return body, headers
