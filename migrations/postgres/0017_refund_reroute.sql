-- A refund the gateway answered `failed` (a closed card, a closed account) can be settled by
-- the operator (`billrun credit-notes refund NUMBER --to credit|none`): the row becomes
-- `rerouted`, saying where the money went (`credit`: the prepaid credit, a `refund` ledger row
-- of reference `credit-note:<number>:reroute:<refund id>`; `none`: paid outside billrun, by the
-- operator), why, and when.
ALTER TABLE refunds DROP CONSTRAINT refunds_status_check;
ALTER TABLE refunds ADD CONSTRAINT refunds_status_check
    CHECK (status IN ('requested', 'pending', 'succeeded', 'failed', 'unknown', 'rerouted'));
ALTER TABLE refunds ADD COLUMN rerouted_to TEXT CHECK (rerouted_to IN ('credit', 'none'));
ALTER TABLE refunds ADD COLUMN reroute_reason TEXT CHECK (length(reroute_reason) BETWEEN 1 AND 500);
ALTER TABLE refunds ADD COLUMN rerouted_at TIMESTAMPTZ;
ALTER TABLE refunds ADD CONSTRAINT refunds_rerouted_check
    CHECK ((status = 'rerouted') = (rerouted_to IS NOT NULL AND rerouted_at IS NOT NULL));
