"""Airflow provider metadata: makes `airflow config list` and `airflow providers` know xcomstore.

Each option's description, example and default come from core.settings.OPTIONS, in the shape
Airflow's own providers use (celery, amazon). `airflow config list` prints descriptions for
no section, Airflow's own included, unless asked (`--include-descriptions`, or `--defaults`):
Airflow 3.3's show_config passes include_descriptions=args.include_descriptions or
args.defaults, and nothing a provider declares changes that.
"""

from __future__ import annotations

from typing import Any

from xcomstore.core.settings import OPTIONS, SECTION
from xcomstore.version import __version__

#: Options whose values are secrets: key material (or the var:/conn: names that lead to it).
_SENSITIVE = frozenset({"encryption_keys", "signing_keys"})


def get_provider_info() -> dict[str, Any]:
    return {
        "package-name": "xcomstore",
        "name": "xcomstore",
        "description": "XCom backend that offloads large values to object storage.",
        "versions": [__version__],
        "config": {
            SECTION: {
                "description": "xcomstore: where and how large XCom values are stored.",
                "options": {
                    option.name: {
                        "description": option.description,
                        "version_added": "0.1.0",
                        "type": "string",
                        "example": option.example,
                        "default": option.default,
                        # Masked by `airflow config list --hide-sensitive` and in Airflow's logs.
                        **({"sensitive": True} if option.name in _SENSITIVE else {}),
                    }
                    for option in OPTIONS
                },
            }
        },
    }
