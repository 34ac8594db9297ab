-- Stripe's webhook events (issue 23 §3): one row per event id, written in the transaction that
-- applies it, so that an event Stripe sends again (Stripe API "Handle duplicate events": the
-- same event may be delivered more than once) is acknowledged and changes nothing.
CREATE TABLE stripe_events (
    id          BIGSERIAL PRIMARY KEY,
    -- Stripe's event id (evt_…).
    event_id    TEXT NOT NULL UNIQUE,
    -- Stripe's event type (payment_intent.succeeded, charge.dispute.created, …).
    type        TEXT NOT NULL,
    -- The object the event is about: the PaymentIntent, charge or dispute id.
    object_id   TEXT,
    -- Stripe's `created`: when Stripe made the event (events may arrive out of order).
    created     TIMESTAMPTZ NOT NULL,
    received_at TIMESTAMPTZ NOT NULL,
    applied_at  TIMESTAMPTZ,
    -- `webhook` (the daemon's route) or `replay` (`billrun webhooks replay`).
    source      TEXT NOT NULL CHECK (source IN ('webhook', 'replay')),
    outcome     TEXT NOT NULL CHECK (outcome IN ('applied', 'no_change', 'unmatched', 'recorded', 'ignored')),
    -- The attempt the event settled or found already settled.
    attempt_id  BIGINT REFERENCES payment_attempts (id)
);
CREATE INDEX stripe_events_object ON stripe_events (object_id);
CREATE INDEX payment_attempts_payment_intent ON payment_attempts (payment_intent_id);
