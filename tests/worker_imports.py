"""What a worker process of the crash tests imports, imported once by the fork server
(tests/forked.py) before it forks any: the hub's worker, every installed channel and extension (as
their entry points load them: hub.schema.metadata imports them all), the web app's modules some of
them import, and what the worker's jobs import when they first run (the SMTP client, the campaign
runs and A/B statistics, webhook delivery, the inbox's and key accounts' jobs)."""

import aiosmtplib  # noqa: F401

import analytics.value  # noqa: F401
import campaigns.ab.decide  # noqa: F401
import campaigns.results  # noqa: F401
import campaigns.runs  # noqa: F401
import campaigns.scheduling  # noqa: F401
import campaigns.surveys.service  # noqa: F401
import channels.meetings.notify  # noqa: F401
import hub.app  # noqa: F401
import hub.worker  # noqa: F401
import hub_telegram.polling  # noqa: F401
import inbox.jobs  # noqa: F401
import inbox.notices  # noqa: F401
import keyaccounts.due  # noqa: F401
import keyaccounts.figures  # noqa: F401
import webhooks.delivery  # noqa: F401
import webhooks.sender  # noqa: F401
from hub.schema import metadata

metadata()
