"""ctxbench harness: configuration, planning, isolated workers, measurement, store and report."""

__version__ = "0.1.0"
# Bumped when a change alters what a point measures; part of every point's resume hash.
MEASURE_VERSION = 1
# Bumped when the record layout changes; written into every record and the manifest.
SCHEMA_VERSION = 1
