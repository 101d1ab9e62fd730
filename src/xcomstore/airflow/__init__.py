"""The Airflow glue: the XCom backend, what xcomstore takes from Airflow (configuration,
connections, serde, metrics), the provider metadata and the UI plugin. Only this package,
the CLI and the client import Airflow."""
