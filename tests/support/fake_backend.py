"""A stand-in llama-server for failure modes a real one cannot be made to show.

Takes llama-server's flags (only --port and --host matter) plus --fake-* flags that choose a
misbehaviour. Logs in llama.cpp's prefixed format so llamactl parses it the same way.
Never used instead of the real server for behaviour the real server can show.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import http.server
import json
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator

STARTED = time.monotonic()


def say(level: str, message: str) -> None:
    elapsed = time.monotonic() - STARTED
    minutes, seconds = divmod(elapsed, 60)
    micros = int((seconds % 1) * 1_000_000)
    stamp = f"{int(minutes)}.{int(seconds):02d}.{micros // 1000:03d}.{micros % 1000:03d}"
    sys.stdout.write(f"{stamp} {level} {message}\n")
    sys.stdout.flush()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--fake-ignore-sigterm", action="store_true")
    parser.add_argument("--fake-exit-at-start", type=int, default=None)
    parser.add_argument("--fake-never-ready", action="store_true")
    parser.add_argument("--fake-load-seconds", type=float, default=0.0)
    parser.add_argument("--fake-health-fail-after", type=float, default=None)
    parser.add_argument("--fake-crash-after", type=float, default=None)
    # Answer POST /v1/completions with an event stream of this many chunks, one every
    # --fake-chunk-interval seconds: a stream whose length is the test's, not the machine's.
    parser.add_argument("--fake-stream-chunks", type=int, default=None)
    parser.add_argument("--fake-chunk-interval", type=float, default=0.1)
    # Seconds before the stream's head: a request taken and not yet answered, as a
    # llama-server's without "stream" is until its whole answer is ready.
    parser.add_argument("--fake-head-after", type=float, default=0.0)
    # One answer at a time, in the order the requests came: llama-server with one slot.
    parser.add_argument("--fake-serial", action="store_true")
    args, _unknown = parser.parse_known_args()

    say("I", f"fake backend pid {os.getpid()} starting")
    if args.fake_exit_at_start is not None:
        say("E", "fake backend: failing at start as asked")
        sys.exit(args.fake_exit_at_start)
    if args.fake_ignore_sigterm:
        signal.signal(signal.SIGTERM, lambda *_: say("W", "fake backend: ignoring SIGTERM"))
    else:
        signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    ready_at = STARTED + args.fake_load_seconds
    one_slot = threading.Lock()  # --fake-serial
    streaming = [0]  # streams being written now, for /slots (one thread each)
    uploaded = [0]  # bytes of the form upload being read now (GET /upload-progress)

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive and chunked answers, as llama-server's
        def do_GET(self) -> None:
            now = time.monotonic()
            if self.path == "/gzip":  # a backend that compresses (this llama-server does not)
                self._gzipped()
                return
            if self.path == "/upload-progress":
                self._json({"bytes": uploaded[0]})
                return
            if self.path == "/slots":  # llama-server's four default slots, as busy as streams
                self._json([{"id": i, "is_processing": i < streaming[0]} for i in range(4)])
                return
            if self.path != "/health":
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            if args.fake_never_ready or now < ready_at:
                code = 503
            elif (args.fake_health_fail_after is not None
                  and now - ready_at > args.fake_health_fail_after):
                code = 500
            else:
                code = 200
            body = b'{"status":"ok"}' if code == 200 else b'{"error":"not ok"}'
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self) -> None:
            if self.path == "/v1/audio/transcriptions":
                self._transcribe()
                return
            if args.fake_stream_chunks is None or self.path != "/v1/completions":
                self.send_error(501)  # llama-server's POST endpoints are not faked
                return
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if args.fake_serial:
                with one_slot:
                    self._stream()
            else:
                self._stream()

        def _stream(self) -> None:
            time.sleep(args.fake_head_after)
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            streaming[0] += 1
            try:
                for index in range(args.fake_stream_chunks):
                    chunk = json.dumps({"object": "text_completion", "choices": [
                        {"index": 0, "text": f" t{index}", "finish_reason": None}]})
                    self.write_chunk(f"data: {chunk}\n\n")
                    time.sleep(args.fake_chunk_interval)
                self.write_chunk("data: [DONE]\n\n")
                self.wfile.write(b"0\r\n\r\n")
            finally:
                streaming[0] -= 1

        def _transcribe(self) -> None:
            """llama-server answers this route only with an audio model: here, the form is
            read as it streams (its progress at GET /upload-progress) and described back."""
            uploaded[0] = 0
            digest = hashlib.sha256()
            length = self.headers.get("Content-Length")
            for piece in self._body_pieces(None if length is None else int(length)):
                digest.update(piece)
                uploaded[0] += len(piece)
            self._json({"text": "fake transcription", "bytes": uploaded[0],
                        "sha256": digest.hexdigest(), "port": args.port,
                        "content_type": self.headers.get("Content-Type"),
                        "chunked": length is None,
                        "api_key": self.headers.get("X-Api-Key"),
                        "authorization": self.headers.get("Authorization")})

        def _body_pieces(self, length: int | None) -> Iterator[bytes]:
            if length is not None:
                while length > 0:
                    piece = self.rfile.read1(min(length, 65536))
                    if not piece:
                        return
                    length -= len(piece)
                    yield piece
                return
            while size := int(self.rfile.readline().strip() or b"0", 16):
                yield self.rfile.read(size)
                self.rfile.readline()
            self.rfile.readline()

        def _json(self, document: object) -> None:
            body = json.dumps(document).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def write_chunk(self, text: str) -> None:
            data = text.encode()
            self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
            self.wfile.flush()

        def _gzipped(self) -> None:
            body = gzip.compress(json.dumps({
                "compressed": True,
                "accept_encoding": self.headers.get("Accept-Encoding"),
                "authorization": self.headers.get("Authorization") is not None,
            }).encode())
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Encoding", "gzip")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer((args.host, args.port), Handler)
    say("I", f"fake backend listening on {args.host}:{args.port}")
    if args.fake_load_seconds and not args.fake_never_ready:
        def loading() -> None:
            while time.monotonic() < ready_at:
                say("I", "fake backend: loading...")
                time.sleep(0.2)
            say("I", "fake backend: model loaded")
        threading.Thread(target=loading, daemon=True).start()
    if args.fake_crash_after is not None:
        def crash() -> None:
            time.sleep(args.fake_crash_after)
            say("E", "fake backend: crashing as asked")
            os._exit(3)
        threading.Thread(target=crash, daemon=True).start()
    server.serve_forever()


if __name__ == "__main__":
    main()
