"""Operations on a whole store, shared by the CLI and the UI: gc (with liveness from the
metadata DB or REST API), repair, rekey, preview and export."""
