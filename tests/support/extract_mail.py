"""Prints a message's headers and parts as JSON, for billrun's tests: the standard library's
email parser reads what the SMTP server received."""
import base64, json, sys
from email import policy
from email.parser import BytesParser

with open(sys.argv[1], "rb") as f:
    msg = BytesParser(policy=policy.default).parse(f)
out = {k: str(msg[k]) for k in ("From", "To", "Subject", "Message-ID", "Date", "X-Arrival")}
parts = []
for part in msg.walk():
    if part.is_multipart():
        continue
    payload = part.get_payload(decode=True) or b""
    parts.append({
        "content_type": part.get_content_type(),
        "filename": part.get_filename(),
        "text": payload.decode("utf-8", "replace") if part.get_content_maintype() == "text" else None,
        "base64": base64.b64encode(payload).decode() if part.get_content_maintype() != "text" else None,
    })
out["parts"] = parts
print(json.dumps(out))
