"""prtvoice: offline voice-guided exercises for Pain Reprocessing Therapy practice.

The core flows one way: YAML file -> Script (script.py) -> Plan (plan.py)
-> PCM blocks (render.py) -> player (player.py) | encoder (export.py).
Nothing below cli.py prints or exits.
"""

__version__ = "0.1.0"
