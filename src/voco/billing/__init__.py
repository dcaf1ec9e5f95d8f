"""Metered billing (seed §5): usage recorded where it happens, aggregated and
reported to Stripe exactly once, subscriptions and seats kept in step by
webhooks and jobs.

The pure parts — which meters a turn produces, how unreported usage becomes
Stripe meter events with stable identifiers, which subscription states admit a
session, which webhook event is newer — live in sans-I/O modules here, tested
without a database or a network. The Stripe SDK adapter is the only module that
talks to Stripe.
"""
