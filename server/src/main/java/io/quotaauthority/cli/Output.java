package io.quotaauthority.cli;

/** --output: a table or field list for people, or JSON for scripts. */
public enum Output {
  TEXT,
  JSON
}
