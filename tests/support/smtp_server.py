"""A real SMTP server on loopback, enough of RFC 5321 for smtplib (Django's SMTP backend): it
keeps the messages it accepts. `hang()` makes it accept connections and never answer, as a
mail server that hangs does; `answer()` brings it back."""

from __future__ import annotations

import socketserver
import threading
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import EmailMessage


@dataclass(frozen=True)
class ReceivedMail:
    sender: str
    recipients: list[str]
    message: EmailMessage


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


class SmtpServer:
    def __init__(self, port: int = 0) -> None:
        self.received: list[ReceivedMail] = []
        self._answering = threading.Event()
        self._answering.set()
        self._stopping = threading.Event()
        smtp = self

        class Handler(socketserver.StreamRequestHandler):
            def reply(self, line: str) -> None:
                self.wfile.write(line.encode() + b"\r\n")

            def handle(self) -> None:
                # Hanging: the connection is accepted, the greeting never comes (waits on an
                # event rather than sleeping, so stopping the server ends it at once).
                while not smtp._answering.is_set() and not smtp._stopping.is_set():
                    smtp._stopping.wait(0.05)
                    if smtp._answering.is_set():
                        return  # this client gave up long ago; the next one is answered
                if smtp._stopping.is_set():
                    return
                self.reply("220 localhost test SMTP")
                sender, recipients = "", []
                while line := self.rfile.readline():
                    verb, _, argument = line.decode(errors="replace").strip().partition(" ")
                    verb = verb.upper()
                    if verb in ("EHLO", "HELO"):
                        self.reply("250 localhost")
                    elif verb == "MAIL":
                        sender, recipients = argument.partition(":")[2].strip("<> "), []
                        self.reply("250 OK")
                    elif verb == "RCPT":
                        recipients.append(argument.partition(":")[2].strip("<> "))
                        self.reply("250 OK")
                    elif verb == "DATA":
                        self.reply("354 End data with <CR><LF>.<CR><LF>")
                        smtp.received.append(ReceivedMail(sender, recipients, self._read_data()))
                        self.reply("250 OK queued")
                    elif verb in ("RSET", "NOOP"):
                        self.reply("250 OK")
                    elif verb == "QUIT":
                        self.reply("221 Bye")
                        return
                    else:
                        self.reply("502 Command not implemented")

            def _read_data(self) -> EmailMessage:
                lines = []
                while (line := self.rfile.readline()) not in (b".\r\n", b".\n", b""):
                    lines.append(line[1:] if line.startswith(b"..") else line)
                return message_from_bytes(b"".join(lines), policy=policy.default)

        self._server = _Server(("127.0.0.1", port), Handler)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def hang(self) -> None:
        self._answering.clear()

    def answer(self) -> None:
        self._answering.set()

    def __enter__(self) -> SmtpServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()
