"""Container health check: exit 0 when the URL answers 200 within 4 s (no curl in the image).

    python deploy/healthcheck.py http://127.0.0.1:8000/health/live
"""

import sys
import urllib.request


def main() -> int:
    url = sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:8000/health/live"
    try:
        with urllib.request.urlopen(url, timeout=4) as response:  # noqa: S310 - a fixed local URL
            return 0 if response.status == 200 else 1
    except OSError:
        return 1


if __name__ == "__main__":
    sys.exit(main())
