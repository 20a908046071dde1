"""A/B tests of a campaign's first message: variants, the seeded split, the winner and its significance.

A campaign with `ab_share_percent` set sends its first step in two to four variants (its own
template, subject or send time each) to a random share of the audience; every recipient's variant
(or "rest") is written with its recipient row, in the transaction that queues its message, so a
crash and a restart never give anyone a second variant. After the wait, the tick picks the winner
by the chosen metric with a chi-square test, or says the test cannot tell; the winner then goes to
the rest through the same outbox and sending rules. See docs/campaigns.md, "A/B tests".
"""
