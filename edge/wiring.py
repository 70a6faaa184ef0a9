"""What each stage takes, derived from the config: the state folder, the
supervision profile, the uplink's link and forwarding settings."""

from __future__ import annotations

import os
from pathlib import Path

from edge import protocol
from edge.config import EdgeConfig
from edge.config.schema import BrokerSection
from edge.errors import ConfigError
from edge.mqttio import LinkSettings, Message
from edge.uplink.forwarder import ForwardSettings
from edge.uplink.supervision import PROFILES, Profile


def state_dir_of(cfg: EdgeConfig, override: Path | None = None) -> Path:
    """Where durable state lives: CLI override, config, then systemd's $STATE_DIRECTORY."""
    if override is not None:
        return override
    if cfg.device.state_dir is not None:
        return cfg.device.state_dir
    env = os.environ.get("STATE_DIRECTORY")
    if env:
        return Path(env.split(":", 1)[0])
    raise ConfigError(
        "device.state_dir",
        ["device.state_dir: not set and $STATE_DIRECTORY is empty (set one, or run under systemd)"],
    )


def profile_of(cfg: EdgeConfig) -> Profile:
    sup = cfg.supervision
    base = PROFILES.get(sup.profile)
    if base is None:  # custom: the rules made sure both are set
        base = Profile(sup.heartbeat_s or 60, sup.path_loss_s or 180)
    return Profile(base.heartbeat_s, base.path_loss_s, sup.max_ack_s, sup.periodic_test_s)


def forward_settings(cfg: EdgeConfig) -> ForwardSettings:
    up = cfg.uplink
    return ForwardSettings(
        device=cfg.device.id,
        account=cfg.station.account,
        ack_timeout_s=up.ack_timeout_s,
        publish_timeout_s=up.publish_timeout_s,
        historical_after_s=up.historical_after_s,
    )


def link_settings(cfg: EdgeConfig, topics: protocol.Topics, will: Message) -> LinkSettings:
    """The primary's link: acknowledgements and commands."""
    up = cfg.uplink
    subscriptions = ((topics.ack, 1), (topics.cmd, 1))
    return broker_link(cfg, up, up.client_id or cfg.device.id, subscriptions, will)


def broker_link(
    cfg: EdgeConfig,
    broker: BrokerSection,
    client_id: str,
    subscriptions: tuple[tuple[str, int], ...],
    will: Message,
    bind_interface: str | None = None,
    bind_address: str | None = None,
) -> LinkSettings:
    """A link to ``broker`` (the primary's or a backup's), at the primary's pace."""
    up = cfg.uplink
    return LinkSettings(
        host=broker.host,
        port=broker.port,
        client_id=client_id,
        keepalive_s=up.keepalive_s,
        username=broker.username,
        password=broker.password.get_secret_value() if broker.password else None,
        tls=broker.tls,
        ca_file=broker.ca_file,
        cert_file=broker.cert_file,
        key_file=broker.key_file,
        reconnect_min_s=up.reconnect_min_s,
        reconnect_max_s=up.reconnect_max_s,
        session_expiry_s=up.session_expiry_s,
        max_inflight=up.max_inflight,
        subscriptions=subscriptions,
        will=will,
        bind_interface=bind_interface,
        bind_address=bind_address,
    )
