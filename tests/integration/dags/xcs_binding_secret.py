"""Another DAG's offloaded value: the secret that xcs_binding's forging producer tries to read.

The test takes this run's reference row and hands it to xcs_binding, whose mapped producer
writes it into its own row; no read path of xcs_binding may give back this value.
"""

from __future__ import annotations

from airflow.sdk import dag, task

# In every copy of the value, so a leak shows in any log or XCom row (the test looks for it).
MARK = "XCS-BINDING-SECRET"


@dag(dag_id="xcs_binding_secret", schedule=None, catchup=False)
def xcs_binding_secret() -> None:
    @task
    def secret() -> str:
        return MARK + ":" + "s" * 5000  # above the threshold: offloaded

    secret()


the_dag = xcs_binding_secret()
