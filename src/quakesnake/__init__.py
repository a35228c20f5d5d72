"""quakesnake: continuous waveforms to an ML earthquake catalog, scored against a reference."""
__version__ = "0.1.0"
