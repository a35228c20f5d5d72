"""The instrument of every synthetic station: sensor and digitizer response, its transfer function
on an FFT grid, and the station's StationXML inventory."""
from __future__ import annotations

import functools

import numpy as np
import pandas as pd
import scipy.fft
from obspy import UTCDateTime
from obspy.core.inventory import Channel, Inventory, Network, Station
from obspy.core.inventory.response import Response

from quakesnake.sources.synthetic.settings import SAMPLING_RATE_HZ
from quakesnake.sources.synthetic.stations import location_code

CHANNELS = ("HHZ", "HHN", "HHE")  # component order Z, N, E in every module of the generator

# Instrument: a 120 s broadband sensor (generator 1500 V/(m/s)) with an 80 Hz two-pole
# high-frequency corner, on a 24-bit digitizer at 4e5 counts/V.
SENSOR_ZEROS = [0j, 0j]
SENSOR_POLES = [
    -0.037019 + 0.037019j, -0.037019 - 0.037019j,
    -355.43 + 355.43j, -355.43 - 355.43j,
]
SENSITIVITY_COUNTS_PER_M_S = 1500.0 * 4.0e5
SENSITIVITY_FREQUENCY_HZ = 1.0
CHANNEL_EPOCH_START = UTCDateTime(2000, 1, 1)


def instrument_response() -> Response:
    """Broadband sensor + digitizer response, ground velocity (m/s) to counts."""
    return Response.from_paz(
        zeros=SENSOR_ZEROS,
        poles=SENSOR_POLES,
        stage_gain=SENSITIVITY_COUNTS_PER_M_S,
        stage_gain_frequency=SENSITIVITY_FREQUENCY_HZ,
        input_units="M/S",
        output_units="COUNTS",
        normalization_frequency=SENSITIVITY_FREQUENCY_HZ,
        normalization_factor=_normalization_factor(),
    )


def _normalization_factor() -> float:
    s = 2j * np.pi * SENSITIVITY_FREQUENCY_HZ
    value = np.prod([s - z for z in SENSOR_ZEROS]) / np.prod([s - p for p in SENSOR_POLES])
    return float(1.0 / abs(value))


def _instrument_transfer(freq: np.ndarray) -> np.ndarray:
    """Counts per (m/s) at ``freq``: the same poles, zeros and gain as :func:`instrument_response`."""
    s = 2j * np.pi * freq
    transfer = np.full(s.shape, SENSITIVITY_COUNTS_PER_M_S * _normalization_factor(), dtype=np.complex128)
    for zero in SENSOR_ZEROS:
        transfer *= s - zero
    for pole in SENSOR_POLES:
        transfer /= s - pole
    return transfer


@functools.lru_cache(maxsize=2)
def day_transfer(n_fft: int) -> np.ndarray:
    """:func:`_instrument_transfer` on the rfft grid of ``n_fft`` samples, complex64: the same for
    every station-day of a run, so a download job that synthesises a whole day computes it once.
    Read-only: callers multiply it into new arrays."""
    transfer = _instrument_transfer(scipy.fft.rfftfreq(n_fft, 1.0 / SAMPLING_RATE_HZ)).astype(np.complex64)
    transfer.flags.writeable = False
    return transfer


def station_inventory(station: pd.Series) -> Inventory:
    """StationXML inventory (response level) of one station's HHZ/HHN/HHE channels."""
    elevation = float(station.get("elevation_m", 0.0) or 0.0)
    if not np.isfinite(elevation):
        elevation = 0.0
    location = location_code(station)
    orientation = {"HHZ": (0.0, -90.0), "HHN": (0.0, 0.0), "HHE": (90.0, 0.0)}
    channels = [
        Channel(
            code=code, location_code=location,
            latitude=float(station["latitude"]), longitude=float(station["longitude"]),
            elevation=elevation, depth=0.0, azimuth=orientation[code][0], dip=orientation[code][1],
            sample_rate=SAMPLING_RATE_HZ, response=instrument_response(), start_date=CHANNEL_EPOCH_START,
        )
        for code in CHANNELS
    ]
    site = Station(
        code=str(station["station"]), latitude=float(station["latitude"]), longitude=float(station["longitude"]),
        elevation=elevation, channels=channels, start_date=CHANNEL_EPOCH_START,
    )
    # A fixed creation date keeps reruns byte-identical.
    return Inventory(networks=[Network(code=str(station["network"]), stations=[site])], source="quakesnake synthetic",
                     created=CHANNEL_EPOCH_START)
