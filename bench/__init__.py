"""Benchmarks that print figures (never pass/fail on time): `.venv/bin/python bench/NAME.py`.

bench/
  tickets.py         claims per second and latency of TicketService.reserve (SQLite, Postgres)
  webhooks.py        Stripe webhook events handled per second, end to end
  verify.py          ticket token verifications per second, on one core
  desk.py            what the host's desk costs with N tickets
  seats.py           what the one stage-seat rule costs (StageService.seat)
  reminders.py       how late reminders are when 10,000 fall due in one minute
  hostile.py         /healthz and claim latency under hostile traffic
  slack_edge.py      what /slack/events spends before Bolt sees a request
  logs.py            what one logged error costs to render, secrets masked
  cli_import.py      what `import bot.cli` costs in a fresh interpreter
  offers.py          what an SDP offer costs the room, refused or answered
  audio_fanout.py    server CPU per listener-second (shared encode vs one per listener)
  audio_latency.py   mouth-to-ear delay, p50/p99, with 0% and 2% loss
  audio_edges.py     the origin's CPU with listeners on NATS edges
  bridge_latency.py  the delay the Discord voice bridge adds, each way
  audio_peers.py     client peers for the audio benchmarks (tone microphone, hosts)
  common.py          shared helpers: throw-away databases, a core on a manual clock
"""
