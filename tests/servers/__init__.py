"""Real object-store servers on 127.0.0.1 for tests: moto (S3), Azurite (Azure Blob), and
gcp-storage-emulator (GCS). Install them with ``scripts/install-servers``.

Each kind has a module with a ``start_*`` function returning a frozen handle (endpoint,
credentials, bucket creation, fsspec options, Airflow connection); ``fixtures`` wraps them in
pytest fixtures.
"""
