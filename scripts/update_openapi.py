"""Render the REST API's OpenAPI document into docs/openapi.json (committed; CI checks it is current).

    python scripts/update_openapi.py          # write it
    python scripts/update_openapi.py --check  # exit 1 if the committed one differs

The document is what the server serves at /api/v1/openapi.json; rendering it
connects to nothing.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
TARGET = ROOT / "docs" / "openapi.json"


def render() -> str:
    from lume_services.api.app import create_app
    from lume_services.config import Context, LUMEServicesSettings

    with tempfile.TemporaryDirectory() as home:
        app = create_app(Context(LUMEServicesSettings(home=Path(home))))
        return json.dumps(app.openapi(), indent=2, sort_keys=True) + "\n"


def main(argv: list[str]) -> int:
    text = render()
    if "--check" in argv:
        if not TARGET.exists() or TARGET.read_text() != text:
            print(f"{TARGET.relative_to(ROOT)} is not current: run `make openapi` and commit it.", file=sys.stderr)
            return 1
        return 0
    TARGET.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
