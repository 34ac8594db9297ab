"""An aiosmtpd handler for billrun's tests: stores each message in a Maildir and rejects
recipients whose address starts with "reject" with a permanent 550."""
from aiosmtpd.handlers import Mailbox


class Handler(Mailbox):
    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.startswith("reject"):
            return "550 5.1.1 <%s>: mailbox unavailable" % address
        envelope.rcpt_tos.append(address)
        return "250 OK"
