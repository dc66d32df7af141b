"""scripts/bench only: the settings and URLconf of the bench containers (compose.bench.yaml
selects them with DJANGO_SETTINGS_MODULE). Never in the production image."""
