"""`watch --metrics` and `watch --alertmanager`: the flags that plug a watcher into a fleet's Prometheus
and Alertmanager (lkwedge.live.metrics, lkwedge.live.alertmanager), kept apart from cli/watch.py."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from lkwedge.durations import DURATION

if TYPE_CHECKING:
    from lkwedge.live.watch import EpisodeHook, View


def fleet_options(command: Any) -> Any:
    """--metrics and --alertmanager (lkwedge.live.metrics / lkwedge.live.alertmanager): plug into a fleet's
    Prometheus and Alertmanager."""
    opts = [
        click.option("--metrics", metavar="HOST:PORT", default=None,
                     help="Serve Prometheus metrics at http://HOST:PORT/metrics (and /healthz); "
                          ":PORT listens on all interfaces, port 0 picks a free one."),
        click.option("--alertmanager", metavar="URL", multiple=True,
                     help="Push alerts to this Alertmanager (POST URL/api/v2/alerts), re-sent while open "
                          "and resolved when the episode ends. Repeat for each member of an HA cluster."),
        click.option("--alertmanager-resend", type=DURATION, default=60.0, show_default="1m",
                     help="How often open alerts are re-sent (each is valid for 4 times this)."),
        click.option("--alert-label", metavar="KEY=VALUE", multiple=True,
                     help="A static label on every pushed alert (e.g. cluster=eu-1); instance= and "
                          "severity= replace the defaults (host name, critical)."),
    ]
    for opt in reversed(opts):
        command = opt(command)
    return command


def check_fleet_options(metrics: str | None, urls: tuple[str, ...], resend: float,
                         labels: tuple[str, ...]) -> dict[str, Any]:
    """Validate the fleet flags up front (one-line usage errors, exit 2). The fleet modules (and
    prometheus_client) are imported only when their flags are given."""
    listen = None
    if metrics is not None:
        from lkwedge.live.metrics import parse_listen

        try:
            listen = parse_listen(metrics)
        except ValueError as e:
            raise click.BadParameter(str(e), param_hint="--metrics") from None
    if urls or labels:
        from lkwedge.live.alertmanager import alerts_url, parse_label
    for url in urls:
        try:
            alerts_url(url)
        except ValueError as e:
            raise click.BadParameter(str(e), param_hint="--alertmanager") from None
    if resend <= 0:
        raise click.BadParameter("must be more than 0", param_hint="--alertmanager-resend")
    static: dict[str, str] = {}
    for text in labels:
        try:
            key, value = parse_label(text)
        except ValueError as e:
            raise click.BadParameter(str(e), param_hint="--alert-label") from None
        static[key] = value
    if static and not urls:
        raise click.UsageError("--alert-label needs --alertmanager")
    ctx = click.get_current_context(silent=True)
    if (not urls and ctx is not None
            and ctx.get_parameter_source("alertmanager_resend") is click.core.ParameterSource.COMMANDLINE):
        raise click.UsageError("--alertmanager-resend needs --alertmanager")
    return {"listen": listen, "urls": tuple(dict.fromkeys(urls)), "resend": resend, "labels": static}


def start_fleet(fleet: dict[str, Any], evict_kwargs: dict[str, Any], view: View,
                 hooks: list[EpisodeHook]) -> Any:
    """Start the metrics server and the Alertmanager workers as watch hooks; returns the metrics (or None)."""
    watch_metrics = None
    if fleet["listen"] is not None:
        from lkwedge.live.metrics import WatchMetrics

        watch_metrics = WatchMetrics()
        host, port = watch_metrics.serve(*fleet["listen"])
        shown = f"[{host}]" if ":" in host else host
        view.info(f"metrics at http://{shown}:{port}/metrics")
        hooks.append(watch_metrics)
    if fleet["urls"]:
        from lkwedge.act.targets import DEFAULT_IDENTITY_TEMPLATE, TargetOptions
        from lkwedge.live.alertmanager import AlertmanagerHook

        template = evict_kwargs["identity_template"] or DEFAULT_IDENTITY_TEMPLATE
        targets = TargetOptions(room=evict_kwargs["evict_room"], identity=evict_kwargs["identity"],
                                identity_template=template)
        static = dict(fleet["labels"])
        hooks.append(AlertmanagerHook(fleet["urls"], on_error=view.error, on_info=view.info,
                                      resend=fleet["resend"], instance=static.pop("instance", None),
                                      labels=static, targets=targets))
    return watch_metrics
