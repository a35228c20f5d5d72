"""The instrument of every synthetic station: its sensor (a 120 s broadband seismometer, or with
``sensors`` a 1 Hz short-period seismometer or a force-balance accelerometer), the digitizer and
whether it clips (``clipping``), the response as ObsPy ``Response``, its transfer function from
ground velocity to counts on an FFT grid, and the station's StationXML inventory."""
from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.fft
from obspy import UTCDateTime
from obspy.core.inventory import Channel, Inventory, Network, Station
from obspy.core.inventory.response import Response

from quakesnake.sources.synthetic.settings import SAMPLING_RATE_HZ, keyed_rng
from quakesnake.sources.synthetic.stations import location_code

COMPONENTS = "ZNE"  # component order Z, N, E in every module of the generator
CHANNEL_EPOCH_START = UTCDateTime(2000, 1, 1)
DIGITIZER_COUNTS_PER_VOLT = 4.0e5  # a 24-bit digitizer
STANDARD_GRAVITY_M_S2 = 9.80665


@dataclass(frozen=True)
class Sensor:
    """A sensor on the digitizer: poles and zeros (rad/s) from its input unit to counts, the
    sensitivity (counts per input unit at ``sensitivity_hz``) and its self-noise, where it shows."""

    name: str
    band_code: str  # SEED band + instrument code of its channels
    input_units: str  # "M/S" (seismometer) or "M/S**2" (accelerometer)
    zeros: tuple
    poles: tuple
    sensitivity: float
    sensitivity_hz: float
    # White acceleration self-noise (dB re 1 (m/s²)²/Hz); None: far below the ground noise.
    self_noise_acceleration_db: float | None = None

    @property
    def channels(self) -> tuple[str, str, str]:
        return tuple(self.band_code + component for component in COMPONENTS)

    def response(self) -> Response:
        """Sensor + digitizer response, input unit to counts."""
        return Response.from_paz(
            zeros=list(self.zeros),
            poles=list(self.poles),
            stage_gain=self.sensitivity,
            stage_gain_frequency=self.sensitivity_hz,
            input_units=self.input_units,
            output_units="COUNTS",
            normalization_frequency=self.sensitivity_hz,
            normalization_factor=self.normalization_factor(),
        )

    def normalization_factor(self) -> float:
        s = 2j * np.pi * self.sensitivity_hz
        value = np.prod([s - z for z in self.zeros]) / np.prod([s - p for p in self.poles])
        return float(1.0 / abs(value))

    def velocity_transfer(self, freq: np.ndarray) -> np.ndarray:
        """Counts per (m/s) of ground velocity at ``freq``: :meth:`response`, and for an
        accelerometer the time derivative (2πif) that turns velocity into its input."""
        s = 2j * np.pi * freq
        transfer = np.full(s.shape, self.sensitivity * self.normalization_factor(), dtype=np.complex128)
        for zero in self.zeros:
            transfer *= s - zero
        for pole in self.poles:
            transfer /= s - pole
        if self.input_units == "M/S**2":
            transfer *= s
        return transfer


# A 120 s broadband seismometer (generator 1500 V/(m/s)) with an 80 Hz two-pole high-frequency corner.
BROADBAND = Sensor(
    name="broadband", band_code="HH", input_units="M/S",
    zeros=(0j, 0j),
    poles=(-0.037019 + 0.037019j, -0.037019 - 0.037019j, -355.43 + 355.43j, -355.43 - 355.43j),
    sensitivity=1500.0 * DIGITIZER_COUNTS_PER_VOLT, sensitivity_hz=1.0,
)
# A 1 Hz short-period seismometer (Mark L-4C-like: damping 0.707, 276.8 V/(m/s)): flat in
# velocity above 1 Hz, falling as f² below, so microseisms nearly vanish from its records.
SHORT_PERIOD = Sensor(
    name="short_period", band_code="EH", input_units="M/S",
    zeros=(0j, 0j),
    poles=(-4.443 + 4.443j, -4.443 - 4.443j),
    sensitivity=276.8 * DIGITIZER_COUNTS_PER_VOLT, sensitivity_hz=5.0,
)
# A force-balance accelerometer (EpiSensor-like: 10 V/g, flat in acceleration to ~150 Hz). Its
# self-noise, -140 dB, and the quantization of its 4e5 counts/(m/s²), -140 dB, make -137 dB: above
# the cultural noise below ~10 Hz, so small events are harder to see on it than on a seismometer.
ACCELEROMETER = Sensor(
    name="accelerometer", band_code="HN", input_units="M/S**2",
    zeros=(),
    poles=(-981.0 + 1009.0j, -981.0 - 1009.0j, -3290.0 + 1263.0j, -3290.0 - 1263.0j),
    sensitivity=10.0 / STANDARD_GRAVITY_M_S2 * DIGITIZER_COUNTS_PER_VOLT, sensitivity_hz=1.0,
    self_noise_acceleration_db=-137.0,
)
SENSORS = {sensor.name: sensor for sensor in (BROADBAND, SHORT_PERIOD, ACCELEROMETER)}
CHANNELS = BROADBAND.channels


def station_sensor(cfg: dict, network: str, station: str) -> Sensor:
    """The sensor of a station: broadband, or with the ``sensors`` shares short-period or an accelerometer."""
    shares = cfg["sensors"]
    if shares["short_period_fraction"] == 0 and shares["accelerometer_fraction"] == 0:
        return BROADBAND
    draw = keyed_rng(cfg["seed"], "sensor", network, station).random()
    if draw < shares["short_period_fraction"]:
        return SHORT_PERIOD
    if draw < shares["short_period_fraction"] + shares["accelerometer_fraction"]:
        return ACCELEROMETER
    return BROADBAND


def station_full_scale(cfg: dict, network: str, station: str) -> int | None:
    """Full scale (counts) of the station's digitizer when its records clip (``clipping``), else None."""
    clipping = cfg["clipping"]
    if clipping["station_fraction"] == 0:
        return None
    if keyed_rng(cfg["seed"], "digitizer", network, station).random() < clipping["station_fraction"]:
        return int(clipping["full_scale_counts"])
    return None


def instrument_response(sensor: Sensor = BROADBAND) -> Response:
    """Sensor + digitizer response, ground velocity (or acceleration) to counts."""
    return sensor.response()


@functools.lru_cache(maxsize=4)
def day_transfer(n_fft: int, sensor: Sensor = BROADBAND) -> np.ndarray:
    """:meth:`Sensor.velocity_transfer` on the rfft grid of ``n_fft`` samples, complex64: the same
    for every station-day of a sensor, so a download job that synthesises a whole day computes it
    once per sensor. Read-only: callers multiply it into new arrays."""
    transfer = sensor.velocity_transfer(scipy.fft.rfftfreq(n_fft, 1.0 / SAMPLING_RATE_HZ)).astype(np.complex64)
    transfer.flags.writeable = False
    return transfer


def station_inventory(station: pd.Series, sensor: Sensor = BROADBAND) -> Inventory:
    """StationXML inventory (response level) of one station's three channels of ``sensor``."""
    elevation = float(station.get("elevation_m", 0.0) or 0.0)
    if not np.isfinite(elevation):
        elevation = 0.0
    location = location_code(station)
    orientation = {"Z": (0.0, -90.0), "N": (0.0, 0.0), "E": (90.0, 0.0)}
    channels = [
        Channel(
            code=code, location_code=location,
            latitude=float(station["latitude"]), longitude=float(station["longitude"]),
            elevation=elevation, depth=0.0, azimuth=orientation[code[-1]][0], dip=orientation[code[-1]][1],
            sample_rate=SAMPLING_RATE_HZ, response=sensor.response(), start_date=CHANNEL_EPOCH_START,
        )
        for code in sensor.channels
    ]
    site = Station(
        code=str(station["station"]), latitude=float(station["latitude"]), longitude=float(station["longitude"]),
        elevation=elevation, channels=channels, start_date=CHANNEL_EPOCH_START,
    )
    # A fixed creation date keeps reruns byte-identical.
    return Inventory(networks=[Network(code=str(station["network"]), stations=[site])], source="quakesnake synthetic",
                     created=CHANNEL_EPOCH_START)
