"""Development stand-ins: local servers that speak a provider's protocol (SMTP, the Twilio API) so
the demo and the tests run with no account anywhere. They are not channels: `hub serve --demo` starts
them through the entry-point group `hub.stand_ins` (hub/demo_standins.py)."""
