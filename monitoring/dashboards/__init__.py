"""Dashboards: the local profile's HTML dashboard from the metrics store (`local`), drawn with inline-SVG
charts (`charts`)."""
