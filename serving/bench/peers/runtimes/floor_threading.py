"""Floor: the standard library's ``ThreadingHTTPServer`` (a thread per keep-alive connection) doing the same
JSON decode + ORT + JSON encode work as a TF Serving REST front end, and nothing else.

``disable_nagle_algorithm``: the handler writes the headers and the body in two writes, and with Nagle on, the
second waits for the client's delayed ACK (~40 ms on Linux): the standard library's own switch for that."""
from __future__ import annotations

import argparse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from ortsession import add_arguments, model_from_path, parse_models


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    add_arguments(parser)
    args = parser.parse_args()
    models = parse_models(args.model, args.ort_options)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as every load generator expects
        disable_nagle_algorithm = True

        def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            model = model_from_path(models, self.path)
            status, answer = (200, model.predict_json(body)) if model else (404, b'{"error": "no such model"}')
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *args) -> None:  # one line per request would be the benchmark
            pass

    class Server(ThreadingHTTPServer):
        request_queue_size = 1024  # the listen backlog (the stdlib's 5 resets connections at c16), as the asyncio floor
        daemon_threads = True

    server = Server(("127.0.0.1", args.port), Handler)
    server.serve_forever()


if __name__ == "__main__":
    main()
