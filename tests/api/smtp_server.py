"""A real SMTP server for one test (aiosmtpd, PyPI): every message it accepts is written to
DIR/NNNN.json, parsed by Python's own email package (headers, text and HTML parts).

usage: smtp_server.py PORT DIR MODE
MODE: ok | refuse-N (answer 451 to the first N messages, then accept) | reject (550 to every one)
Prints "ready" once it listens.
"""
import asyncio
import json
import os
import sys
from email import policy
from email.parser import BytesParser

from aiosmtpd.controller import Controller


class Handler:
    def __init__(self, out, mode):
        self.out = out
        self.mode = mode
        self.refuse_left = int(mode.split("-", 1)[1]) if mode.startswith("refuse-") else 0
        self.count = 0

    async def handle_DATA(self, server, session, envelope):
        if self.mode == "reject":
            return "550 5.7.1 Delivery not authorized, message refused"
        if self.refuse_left > 0:
            self.refuse_left -= 1
            return "451 4.3.0 Temporary failure, try again later"
        message = BytesParser(policy=policy.default).parsebytes(envelope.content)
        text = message.get_body(("plain",))
        html = message.get_body(("html",))
        self.count += 1
        record = {
            "mailFrom": envelope.mail_from,
            "rcptTos": envelope.rcpt_tos,
            "from": str(message["From"]),
            "to": str(message["To"]),
            "replyTo": str(message["Reply-To"]) if message["Reply-To"] else None,
            "subject": str(message["Subject"]),
            "messageId": str(message["Message-ID"]),
            "text": text.get_content() if text else None,
            "html": html.get_content() if html else None,
        }
        path = os.path.join(self.out, "%04d.json" % self.count)
        with open(path + ".tmp", "w", encoding="utf-8") as f:
            json.dump(record, f)
        os.rename(path + ".tmp", path)
        return "250 2.0.0 OK"


async def main():
    port, out, mode = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    controller = Controller(Handler(out, mode), hostname="127.0.0.1", port=port)
    controller.start()
    print("ready", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        controller.stop()


if __name__ == "__main__":
    asyncio.run(main())
