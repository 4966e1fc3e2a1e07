package io.quotaauthority.authz;

/**
 * The secret a request presents, and where it was found.
 *
 * @param fromQuery true when it came from the Gemini-style {@code ?key=} query parameter, which the
 *     allowed response must then strip
 */
public record PresentedKey(String secret, boolean fromQuery) {}
