package io.quotaauthority.metering;

import io.quotaauthority.provider.Provider;

/**
 * One metered response, as metering hands it to {@link UsageCharger}: who pays, under which ids,
 * what was used and how it is to be priced.
 *
 * @param reportId the idempotency key, made by the authority (one per metering stream)
 * @param requestId the request's x-request-id for the ledger, or null
 * @param model the model to price it as (the response's when the table prices it)
 * @param serviceTier the tier the response (else the request) states, or null for standard
 * @param estimated the usage is an estimate for a response cut short (marked in the ledger)
 */
public record Metered(
    long keyId,
    String reportId,
    String requestId,
    Provider provider,
    String model,
    String serviceTier,
    TokenUsage usage,
    boolean estimated) {}
