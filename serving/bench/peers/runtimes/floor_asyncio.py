"""Floor: a minimal raw asyncio HTTP/1.1 server (one event loop, keep-alive, one write per answer) doing the
same JSON decode + ORT + JSON encode work in the loop. The lowest a Python REST front end can cost."""
from __future__ import annotations

import argparse
import asyncio

from ortsession import add_arguments, model_from_path, parse_models


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    add_arguments(parser)
    args = parser.parse_args()
    models = parse_models(args.model, args.ort_options)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while request_line := await reader.readline():
                length = 0
                while (line := await reader.readline()) not in (b"\r\n", b""):
                    key, _, value = line.partition(b":")
                    if key.strip().lower() == b"content-length":
                        length = int(value)
                body = await reader.readexactly(length)
                model = model_from_path(models, request_line.split()[1].decode("latin-1"))
                status, answer = (b"200 OK", model.predict_json(body)) if model else \
                    (b"404 Not Found", b'{"error": "no such model"}')
                writer.write(b"HTTP/1.1 " + status + b"\r\nContent-Type: application/json\r\nContent-Length: "
                             + str(len(answer)).encode() + b"\r\n\r\n" + answer)
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    async def serve() -> None:
        server = await asyncio.start_server(handle, "127.0.0.1", args.port, backlog=1024)
        async with server:
            await server.serve_forever()

    asyncio.run(serve())


if __name__ == "__main__":
    main()
