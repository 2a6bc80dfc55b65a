"""Run the reference target in the foreground, optionally with faults."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from probes.target.app import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET
from probes.target.faults import MODES, Faults, parse_faults
from probes.target.server import serve_forever


def _port(value: str) -> int:
    port = int(value)
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{value} is not a TCP port")
    return port


class Command(BaseCommand):
    help = "Serve the reference target (a fake staging API) for probes to check."
    # The target uses no models, URLs or database: a fault elsewhere in the
    # project must not stop it from starting.
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=_port, default=8765)
        parser.add_argument(
            "--fault",
            action="append",
            default=[],
            metavar="MODE",
            help=f"repeatable; one of: {', '.join(MODES)}",
        )
        parser.add_argument("--client-id", default=DEFAULT_CLIENT_ID)
        parser.add_argument("--client-secret", default=DEFAULT_CLIENT_SECRET)

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            faults = parse_faults(options["fault"])
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        try:
            asyncio.run(self._serve(options, faults))
        except OSError as exc:
            raise CommandError(f"cannot listen on {options['host']}:{options['port']}: {exc}") from None

    async def _serve(self, options: dict[str, Any], faults: Faults) -> None:
        """Serve until SIGINT or SIGTERM, then shut down cleanly."""
        loop = asyncio.get_running_loop()
        main = asyncio.current_task()
        assert main is not None  # inside asyncio.run
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, main.cancel)

        def banner(port: int) -> None:
            host = f"[{options['host']}]" if ":" in options["host"] else options["host"]
            self.stdout.write(
                f"Reference target on http://{host}:{port} and ws://{host}:{port}/ws "
                f"(client_id {options['client_id']!r}, faults: {faults}); "
                "Ctrl-C to stop"
            )
            self.stdout.flush()

        with contextlib.suppress(asyncio.CancelledError):
            await serve_forever(
                options["host"],
                options["port"],
                faults,
                client_id=options["client_id"],
                client_secret=options["client_secret"],
                ready=banner,
            )
