"""GPIO adapter: panel outputs on gpiozero input devices.

The only module that imports gpiozero. Its callbacks run on gpiozero's own
thread: they only timestamp the edge and hand a :class:`ZoneChanged` to the
``on_change`` callable, which the app makes hop into the event loop.
gpiozero's mock factory does not debounce, and neither do we here:
filtering belongs to the pure zone state machine.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

from edge.clock import Clock, ms
from edge.config import InputConfig
from edge.errors import HardwareError, NotFound
from edge.model import ZoneChanged

log = logging.getLogger(__name__)


class GpioInputs:
    """The box's inputs; ``backend`` is ``"lgpio"`` on the device or ``"mock"``."""

    def __init__(self, inputs: Sequence[InputConfig], backend: str, clock: Clock) -> None:
        self._inputs = {inp.name: inp for inp in inputs}
        self._backend = backend
        self._clock = clock
        self._factory: Any = None
        self._devices: dict[str, Any] = {}

    @property
    def simulated(self) -> bool:
        return self._backend == "mock"

    def open(self, on_change: Callable[[ZoneChanged], None]) -> None:
        """Claim the pins and start reporting changes to ``on_change`` (any thread)."""
        from gpiozero import DigitalInputDevice
        from gpiozero.exc import GPIOZeroError

        self._factory = pin_factory(self._backend)
        try:
            for inp in self._inputs.values():
                device = DigitalInputDevice(
                    inp.pin, pull_up=inp.pull == "up", pin_factory=self._factory
                )
                self._devices[inp.name] = device
                if self.simulated:  # a simulated panel starts quiet
                    self.simulate(inp.name, active=False)
                device.when_activated = self._callback(inp, on_change, closed=True)
                device.when_deactivated = self._callback(inp, on_change, closed=False)
        except GPIOZeroError as exc:
            self.release()
            raise HardwareError(f"cannot open GPIO input: {exc}") from exc

    def levels(self) -> list[ZoneChanged]:
        """The current level of every input, as changes (the start-up snapshot)."""
        return [
            self._change(self._inputs[name], bool(device.is_active), initial=True)
            for name, device in self._devices.items()
        ]

    def simulate(self, name: str, active: bool) -> None:
        """Drive a mock pin so that input ``name`` reads ``active`` (simulator only)."""
        if not self.simulated:
            raise HardwareError("inputs can only be simulated with gpio.backend = 'mock'")
        inp = self._inputs.get(name)
        if inp is None:
            raise NotFound(f"no input named {name!r}")
        closed = active != (inp.contact == "nc")
        pin = self._factory.pin(inp.pin)
        # A closed contact pulls the line to the rail opposite its pull resistor.
        if closed == (inp.pull == "up"):
            pin.drive_low()
        else:
            pin.drive_high()
        pin.clear_states()  # the mock keeps every edge in a list: chatter would grow it

    def pulses(
        self, name: str, count: int, on_ms: float, off_ms: float
    ) -> Coroutine[Any, Any, None]:
        """A train of ``count`` activations of input ``name`` (simulator only): a
        siren-following PGM, or chatter at a high rate. Checks at once, runs when awaited."""
        if not self.simulated:
            raise HardwareError("inputs can only be simulated with gpio.backend = 'mock'")
        if name not in self._inputs:
            raise NotFound(f"no input named {name!r}")
        return self._pulses(name, count, on_ms / 1000, off_ms / 1000)

    async def _pulses(self, name: str, count: int, on_s: float, off_s: float) -> None:
        for _ in range(count):
            self.simulate(name, True)
            await asyncio.sleep(on_s)
            self.simulate(name, False)
            await asyncio.sleep(off_s)

    @property
    def factory(self) -> Any:
        """The pin factory in use (outputs share it), once open."""
        return self._factory

    def close(self) -> None:
        """Release the input pins (outputs sharing the factory stay up)."""
        for device in self._devices.values():
            device.close()
        self._devices.clear()

    def release(self) -> None:
        """Close the pin factory itself, after every device on it is closed."""
        self.close()
        if self._factory is not None:
            self._factory.close()
            self._factory = None

    def _callback(
        self, inp: InputConfig, on_change: Callable[[ZoneChanged], None], closed: bool
    ) -> Callable[[], None]:
        def fire() -> None:
            on_change(self._change(inp, closed))

        return fire

    def _change(self, inp: InputConfig, closed: bool, initial: bool = False) -> ZoneChanged:
        active = closed != (inp.contact == "nc")
        return ZoneChanged(
            input=inp.name,
            zone=inp.zone,
            active=active,
            at_s=self._clock.monotonic(),
            wall_ms=ms(self._clock.time()),
            initial=initial,
        )


def pin_factory(backend: str) -> Any:
    """gpiozero's pin factory: lgpio on the device, the mock one for simulation."""
    if backend == "mock":
        from gpiozero.pins.mock import MockFactory

        return MockFactory()
    try:
        from gpiozero.pins.lgpio import LGPIOFactory

        return LGPIOFactory()
    except (ImportError, OSError) as exc:
        raise HardwareError(f"the lgpio pin factory is not available: {exc}") from exc
