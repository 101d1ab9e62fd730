"""Airflow provider metadata: makes `airflow config list` and `airflow providers` know xcomstore."""

from __future__ import annotations

from typing import Any

from xcomstore.core.settings import OPTIONS, SECTION
from xcomstore.version import __version__


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
                    }
                    for option in OPTIONS
                },
            }
        },
    }
