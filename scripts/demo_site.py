"""Serve the demo article pages of demo/ on their own origin, pointing at the service.

python scripts/demo_site.py --port 8001 --api http://127.0.0.1:8000 --site demo
"""

from __future__ import annotations

import argparse
import functools
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

DEMO = Path(__file__).resolve().parent.parent / "demo"


class DemoHandler(SimpleHTTPRequestHandler):
    """Static files of demo/, with {{API}}, {{SITE}} and {{SELF}} filled into the pages."""

    values: ClassVar[dict[str, str]] = {}

    def do_GET(self) -> None:
        path = self.path.split("?")[0].lstrip("/") or "index.html"
        if path.endswith(".html") and (DEMO / path).is_file() and "/" not in path:
            page = (DEMO / path).read_text("utf-8")
            for name, value in self.values.items():
                page = page.replace("{{" + name + "}}", value)
            body = page.encode("utf-8")
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        super().do_GET()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    parser.add_argument("--api", default="http://127.0.0.1:8000")
    parser.add_argument("--site", default="demo")
    args = parser.parse_args()
    DemoHandler.values = {
        "API": args.api.rstrip("/"),
        "SITE": args.site,
        "SELF": f"http://{args.host}:{args.port}",
    }
    handler = functools.partial(DemoHandler, directory=str(DEMO))
    with ThreadingHTTPServer((args.host, args.port), handler) as server:
        server.serve_forever()


if __name__ == "__main__":
    main()
