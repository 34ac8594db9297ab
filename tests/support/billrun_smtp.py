"""An aiosmtpd handler for billrun's tests: stores each message in a Maildir and rejects
recipients whose address starts with "reject" with a permanent 550. Each message gets an
X-Arrival header, its rank in the order the server received them."""
import itertools

from aiosmtpd.handlers import Mailbox

_arrival = itertools.count(1)


class Handler(Mailbox):
    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.startswith("reject"):
            return "550 5.1.1 <%s>: mailbox unavailable" % address
        envelope.rcpt_tos.append(address)
        return "250 OK"

    def handle_message(self, message):
        message["X-Arrival"] = str(next(_arrival))
        super().handle_message(message)
