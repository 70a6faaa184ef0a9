"""Feedback outputs to the panel: "path fault" and "delivery failure" on GPIO.

Driven by the uplink's supervision through the app; the state of each output
is on the status snapshot. The only other module that imports gpiozero is
:mod:`edge.inputs.gpio`; both take the pin factory from there.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from edge.config.schema import OutputConfig
from edge.errors import HardwareError
from edge.inputs.gpio import pin_factory

log = logging.getLogger(__name__)


class GpioOutputs:
    def __init__(self, outputs: Sequence[OutputConfig], backend: str) -> None:
        self._outputs: dict[str, OutputConfig] = {out.function: out for out in outputs}
        self._backend = backend
        self._factory: Any = None
        self._devices: dict[str, Any] = {}
        self.state: dict[str, bool] = {out.function: False for out in outputs}

    def open(self, factory: Any = None) -> None:
        """Claim the pins, all in the "no fault" level. ``factory``: share the inputs' one."""
        from gpiozero import DigitalOutputDevice
        from gpiozero.exc import GPIOZeroError

        self._factory = factory if factory is not None else pin_factory(self._backend)
        try:
            for function, out in self._outputs.items():
                self._devices[function] = DigitalOutputDevice(
                    out.pin,
                    active_high=out.active_high,
                    initial_value=False,
                    pin_factory=self._factory,
                )
        except GPIOZeroError as exc:
            self.close()
            raise HardwareError(f"cannot open GPIO output: {exc}") from exc

    def set(self, function: str, active: bool) -> None:
        """Drive the output with ``function`` (if one is configured) to fault or not."""
        self.state[function] = active
        device = self._devices.get(function)
        if device is None:
            return
        if active:
            device.on()
        else:
            device.off()
        log.info("output %s (%s): %s", self._outputs[function].name, function, active)

    def levels(self) -> dict[str, bool]:
        """What the pins really read (fault or not), for the status page."""
        return {f: bool(d.value) for f, d in self._devices.items()}

    def close(self) -> None:
        for device in self._devices.values():
            device.close()
        self._devices.clear()
