"""Synthetic seismic scenario: the embedded default data source, deterministic from a seed.

:func:`generate_scenario` draws earthquakes (Gutenberg–Richter magnitudes, Poisson origin times,
occasional swarms) or takes them from a real catalog ("twin" mode), computes every event ×
station P and S arrival with its amplitude, and predicts which arrivals an analyst would see.
:func:`synthesize_station_day` turns those arrivals into a day of three-component 100 Hz data in
counts, with a StationXML inventory whose response converts back to ground velocity.

Physics, in ground velocity:

- Direct P and S pulses: causal Brune source spectrum (corner from moment and stress drop),
  geometric spreading folded into the Hutton & Boore amplitude law, constant-Q attenuation with
  its causal dispersion plus a site kappa, double-couple radiation (a random mechanism per
  event), P polarised along the ray and S split into SV/SH by the mechanism. Incidence angles use
  near-surface speeds, so P is strongest on Z and S on the horizontals.
- Amplitudes: every event's S wave is scaled so that its simulated Wood–Anderson peak equals
  ``10 ** (ML - minus_log_a0(r))`` mm (Hutton & Boore 1987); P follows from the S level by
  ``(vs/vp)³`` and the radiation pattern. With Q_P = Q_S and a P kappa of vs/vp times the S
  one, the S peak on the horizontals is a median 3.2 times the P peak on Z (10–90 %: 1–8) and
  4.8 times the P on the horizontals, as in the real Northern-California records of
  ``shared/data/labelled-waveforms`` (3.2 and 4.3).
- Site: a soft surface layer under each station echoes every arrival (two-way time 0.03–0.15 s
  for P, 2–3 times that for S), so direct arrivals are short wavetrains, as in real records.
- Coda: band-limited noise after each phase with an envelope decaying as
  ``T/(T+τ) exp(-τ/τc)`` (T travel time, τ time after onset), on all three components.
- Noise: secondary (~0.2 Hz) and primary (~0.07 Hz) microseisms, cultural noise (1–20 Hz) with a
  day/night cycle, a station-dependent level and a station H/V ratio of 1.2–2, generated as
  Gaussian noise with a model PSD in the frequency domain and passed through the instrument
  response.
- Gaps: with ``gap_probability`` per station-day one 1–30 min stretch of data is missing.
- Messier options, each off by default: an aftershock sequence (:mod:`.aftershocks`), short-period
  and accelerometer stations (:mod:`.instruments`), digitizers that clip, and transient noise
  (:mod:`.transients`).

Analyst visibility (``snr``/``visible`` in the arrivals table) is computed from the same pulses
and the same noise model the synthesizer uses: ``snr`` is the peak of the noise-free 1–20 Hz
signal within 2 s after the onset over the RMS of the 1–20 Hz noise at that time (for S, the P
coda there counts as noise too, and for every arrival the codas of other events' earlier arrivals
still ringing at that station, :mod:`.overlaps`: in an aftershock sequence an onset buried in a
larger event's coda is one no analyst picks); P on Z, S on the stronger horizontal. ``min_snr`` is the
threshold the arrival had to reach; truth picks get an OGS-style weight from ``snr / min_snr``.

Configuration (the workflow's ``synthetic:`` block; every default: the schema, config/README.md):

``seed``
    Integer; every random draw derives from it and from stable names (day, station, event).
``network``
    Network code of generated stations.
``n_stations``
    Number of generated stations (ignored with ``stations_file`` or ``catalog_dir``).
``region``
    Box holding generated stations (a jittered grid) and epicentres (~120 × 120 km).
``depth_km``
    Hypocentre depth range, km below sea level, uniform.
``events_per_day``
    Mean number of background events per day (Poisson).
``magnitude``
    Truncated Gutenberg–Richter distribution of ML.
``swarm_probability_per_day``
    Chance that a day holds a swarm: 5–20 events within one hour in a ~3 km patch.
``noise.level_db_range``
    Cultural-noise level of a station, dB above 1e-8 m/s RMS (1–20 Hz, at night), uniform
    per station: some stations are quiet, some noisy.
``noise.cultural_day_night_ratio``
    Amplitude ratio of cultural noise at mid-afternoon to the middle of the night.
``noise.microseism_db``
    Acceleration PSD (dB re 1 m²/s⁴/Hz) at the secondary microseism peak; varies ±3 dB by
    station and ±4 dB by day.
``noise.utc_offset_h``
    Local time of the day/night cycle (UTC+1: central Europe).
``gap_probability``
    Chance per station-day of one data gap of 1–30 minutes.
``aftershocks``
    A mainshock (``mainshock_magnitude``, ``mainshock_time``, epicentre, depth) and aftershocks
    at the Omori–Utsu rate ``K / (t + c)^p`` (``n_events_first_day``, ``omori_c_days``,
    ``omori_p``) within ``radius_km``, ML from ``min_magnitude`` to ``max_magnitude`` (Båth's law).
``sensors``
    Shares of short-period (EH?) and accelerometer (HN?) stations; the rest are broadband (HH?).
``clipping``
    Share of stations whose digitizer clips at ``full_scale_counts``.
``transients``
    Spikes, steps and cultural bursts per station-day (Poisson means).
``complexity``
    ``polarization_scatter``: each arrival's polarisation moved off ray theory by a random vector
    (P on the horizontals, S on the vertical, as scattering near a station does);
    ``sp_precursor_probability``: S arrivals preceded by a P-polarised S-to-P conversion
    0.3–1.2 s ahead (no pick); ``s_coda_arrivals``: discrete scattered arrivals in each S coda
    (Poisson mean; copies of the S pulse, random polarisation, no pick). All off by default.
``truth_min_snr``
    A P arrival is ``visible`` (an analyst would pick it) when its ``snr`` reaches this. Over a
    few seconds Gaussian noise peaks at about 3 RMS, so 6 is an onset twice the size of the
    largest noise wiggles: plain on a 1–20 Hz trace. Weaker onsets are the ones analysts skip
    or pick with low weight.
``truth_s_snr_factor``
    An S arrival needs ``truth_min_snr`` times this: analysts pick S only where its onset in
    the P coda is unambiguous. With one threshold for both phases the truth would hold 1.4
    times more S than P picks; with 1.7 it holds 1.4 times more P than S (0.9 within 20 km,
    1.5 at 20–50 km, 1.9 at 50–100 km), as the OGS bulletin of the same region does (1.1,
    1.4, 1.9).
``truth_min_picks``
    An event enters the truth catalog only with at least this many visible picks.
``stations_file``
    CSV of real stations (station, network, latitude, longitude[, elevation_m]); replaces the
    generated stations.
``catalog_dir``
    Directory with a real catalog in the reference layout (events.csv, picks.csv
    [, stations.csv]): twin mode. Events come from it, sized by ML (else ``magnitude``, else
    MD; events with none are left out, with a warning); arrivals take its pick times where it
    has them and model times elsewhere; stations come from ``stations_file`` or its
    stations.csv.
"""
from __future__ import annotations

# The public API (what the workflow, scripts, benchmarks and tests use), from the modules that hold it:
# settings (config and seeding), stations, noise, gaps, instruments, events, pulses, arrivals,
# scenario (truth catalog, tables on disk) and waveforms (a station-day of data).
from quakesnake.sources.synthetic.gaps import station_day_gaps
from quakesnake.sources.synthetic.events import generate_events
from quakesnake.sources.synthetic.instruments import CHANNELS, instrument_response, station_inventory
from quakesnake.sources.synthetic.noise import StationDayNoise, station_day_noise
from quakesnake.sources.synthetic.pulses import wood_anderson_peak_mm
from quakesnake.sources.synthetic.scenario import Scenario, generate_scenario, read_arrivals, write_scenario
from quakesnake.sources.synthetic.settings import DAY_S, DEFAULTS, SAMPLING_RATE_HZ, keyed_rng, resolve_config
from quakesnake.sources.synthetic.stations import station_table
from quakesnake.sources.synthetic.waveforms import synthesize_station_day

__all__ = [
    "CHANNELS", "DAY_S", "DEFAULTS", "SAMPLING_RATE_HZ", "Scenario", "StationDayNoise", "generate_events",
    "generate_scenario", "instrument_response", "keyed_rng", "read_arrivals", "resolve_config",
    "station_day_gaps", "station_day_noise", "station_inventory", "station_table", "synthesize_station_day",
    "wood_anderson_peak_mm", "write_scenario",
]
