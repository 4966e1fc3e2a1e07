-- True when Envoy metering charged an estimate: the response ended (client gone, upstream reset,
-- an event stream that stopped short) before the provider's final usage arrived, so the counts
-- are the larger of what the provider had reported and what the request's text and the response
-- text seen add up to (README, "Streams cut short"). False for every counted charge, and so for
-- every row written before this column existed. Not indexed: nothing queries by it.
ALTER TABLE usage_events
    ADD COLUMN estimated boolean NOT NULL DEFAULT false;

COMMENT ON COLUMN usage_events.estimated IS 'charged an estimate: the response ended before the provider''s final usage';
