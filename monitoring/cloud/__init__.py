"""Cloud Monitoring for the cloud profile: custom metrics, dashboards, burn-rate alert policies, routing.

Everything here builds plain API JSON first (reviewable build artefacts) and turns it into the
google-cloud-monitoring types only where a client is handed in; the SDKs are imported inside the
functions that talk to the API, so building artefacts never loads them.
"""
