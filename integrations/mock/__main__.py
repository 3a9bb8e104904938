import os
import sys
import time

from integrations.mock.integration import MockIntegration
from integrations.sdk import serve

# Start-up misbehaviour for the host's tests (the config only arrives after the handshake).
_startup = os.environ.get("PINPOINT_MOCK_STARTUP", "")
if _startup == "garbage" and os.environ.get("PLUGIN"):
    print("hello, I am not a handshake", flush=True)
    time.sleep(30)
elif _startup == "exit":
    print("mock: failing on purpose before the handshake", file=sys.stderr, flush=True)
    sys.exit(2)
elif _startup == "silent":
    time.sleep(60)

serve(MockIntegration)
