"""A real SMTP server (aiosmtpd) for the HRMSMail tests, with behaviours chosen by the recipient:

  reject-perm@...   RCPT answered 550 (permanent)
  reject-temp@...   RCPT answered 451 (transient)
  data-perm@...     end of DATA answered 554
  drop-data@...     DATA answered 354, then the connection is closed before the content arrives
  slow@...          end of DATA answered only after 30 s (the client must time out first)
  anyone else       accepted; saved as OUT/<n>.eml (the exact bytes after un-dot-stuffing) and
                    OUT/<n>.json (envelope plus the message as Python's email parser reads it)

AUTH PLAIN/LOGIN is offered without TLS; user "hrms" with password "s3cret!" is accepted.
Usage: python smtp_test_server.py HOST PORT OUT_DIR. Writes OUT_DIR/ready when listening, exits when
its stdin closes (so it never outlives the test process that started it).
"""
import asyncio
import email
import email.policy
import json
import os
import sys
import threading

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword


def local(address):
    return address.split("@", 1)[0].lower()


class Handler:
    def __init__(self, out_dir):
        self.out_dir = out_dir
        self.count = 0
        self.lock = threading.Lock()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if local(address) == "reject-perm":
            return "550 5.1.1 mailbox unavailable"
        if local(address) == "reject-temp":
            return "451 4.3.0 try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        kinds = {local(r) for r in envelope.rcpt_tos}
        if "data-perm" in kinds:
            return "554 5.6.0 message refused"
        if "slow" in kinds:
            await asyncio.sleep(30)
        with self.lock:
            self.count += 1
            n = self.count
        raw = envelope.original_content
        message = email.message_from_bytes(raw, policy=email.policy.default)
        parts = {}
        for part in message.walk():
            if not part.is_multipart():
                parts[part.get_content_type()] = part.get_content()
        record = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "auth_user": session.authenticated and getattr(session.auth_data, "login", b"").decode(),
            "subject": str(message["subject"]),
            "from": str(message["from"]),
            "to": str(message["to"]),
            "message_id": str(message["message-id"]),
            "date": str(message["date"]),
            "content_type": message.get_content_type(),
            "parts": parts,
            "defects": [repr(d) for d in message.defects] + [repr(d) for p in message.walk() for d in p.defects],
        }
        with open(os.path.join(self.out_dir, f"{n}.eml"), "wb") as f:
            f.write(raw)
        tmp = os.path.join(self.out_dir, f"{n}.json.tmp")
        with open(tmp, "w") as f:
            json.dump(record, f)
        os.rename(tmp, os.path.join(self.out_dir, f"{n}.json"))
        return "250 2.0.0 queued as %d" % n


class TestSMTP(SMTP):
    async def smtp_DATA(self, arg):
        if any(local(r) == "drop-data" for r in self.envelope.rcpt_tos):
            await self.push("354 End data with <CR><LF>.<CR><LF>")
            self.transport.close()
            return
        return await super().smtp_DATA(arg)


def authenticator(server, session, envelope, mechanism, auth_data):
    ok = isinstance(auth_data, LoginPassword) and auth_data.login == b"hrms" and auth_data.password == b"s3cret!"
    return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)


class TestController(Controller):
    def factory(self):
        return TestSMTP(self.handler, **self.SMTP_kwargs)


def main():
    host, port, out_dir = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    os.makedirs(out_dir, exist_ok=True)
    controller = TestController(Handler(out_dir), hostname=host, port=port, authenticator=authenticator,
                                auth_require_tls=False, auth_required=False, decode_data=False)
    controller.start()
    with open(os.path.join(out_dir, "ready"), "w") as f:
        f.write(str(os.getpid()))
    sys.stdin.read()   # until the parent closes our stdin (or dies)
    controller.stop()


if __name__ == "__main__":
    main()
