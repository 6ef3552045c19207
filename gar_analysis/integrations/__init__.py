"""Connections to the ecosystem's tools: the Dolibarr CRM and Rocket.Chat.

- :mod:`.dolibarr`: ``gar-analysis crm pull`` (Dolibarr REST API → ``crm/*.csv``).
- :mod:`.dolibarr_push`: ``gar-analysis crm push`` (usage statistics → third-party extrafields).
- :mod:`.rocketchat`: ``gar-analysis share`` (digest of a batch of reports).
- :mod:`.http`: shared HTTP session, retries with back-off, rate-limit waits,
  redaction of secrets in logs.
"""
