"""The email channel against real servers: aiosmtpd (its own process) and Dovecot."""
