-- The request's own id (Envoy's x-request-id, or what a reporter sent), kept for correlation with
-- Envoy's access log. It is not the idempotency key: report_id is, and for metered charges the
-- authority makes report_id itself, so a client repeating an x-request-id is still charged each
-- time. Nullable: older rows and reports without one have none. Not indexed: nothing queries by it.
ALTER TABLE usage_events
    ADD COLUMN request_id TEXT CHECK (length(request_id) BETWEEN 1 AND 128);

COMMENT ON COLUMN usage_events.request_id IS 'the request''s x-request-id (correlation only; not unique)';
