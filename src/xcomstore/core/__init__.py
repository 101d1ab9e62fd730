"""The core: XComStore (push, pull, purge, read, verify, list) and what it decides with —
where a value goes (layout), what the DB keeps (reference, signing), what may be stored
(policy), how long (retention), the settings, and what it reports (observe)."""
