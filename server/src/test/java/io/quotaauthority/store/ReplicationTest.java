package io.quotaauthority.store;

import static org.assertj.core.api.Assertions.assertThat;

import io.quotaauthority.store.Replication.Guarantee;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

class ReplicationTest {
  @ParameterizedTest(name = "synchronous_commit={0}, names=''{1}'' -> {2}")
  @CsvSource(
      delimiter = '|',
      nullValues = "NULL",
      textBlock =
          """
          on           | standby1             | SYNCHRONOUS
          on           | 'FIRST 1 (s1, s2)'   | SYNCHRONOUS
          on           | 'ANY 1 (s1, s2)'     | SYNCHRONOUS
          remote_apply | s1                   | SYNCHRONOUS
          remote_write | s1                   | SYNCHRONOUS
          ON           | s1                   | SYNCHRONOUS
          on           | ''                   | ASYNCHRONOUS
          on           | '  '                 | ASYNCHRONOUS
          local        | s1                   | ASYNCHRONOUS
          remote_apply | ''                   | ASYNCHRONOUS
          off          | s1                   | UNFLUSHED
          off          | ''                   | UNFLUSHED
          """)
  void guarantee_settings_asTheTableSays(String commit, String names, Guarantee expected) {
    assertThat(new Replication(commit, names, 1).guarantee()).isEqualTo(expected);
  }

  @ParameterizedTest(name = "{0}")
  @CsvSource(
      delimiter = '|',
      textBlock =
          """
          on     | s1 | 1  | 'database durability: synchronous replication (synchronous_commit=on, synchronous_standby_names=''s1'', 1 synchronous standby(s) connected): an acknowledged charge survives the loss of the primary'
          on     | s1 | 0  | 'database durability: synchronous replication (synchronous_commit=on, synchronous_standby_names=''s1'', 0 synchronous standby(s) connected): an acknowledged charge survives the loss of the primary; with none connected every commit waits, so usage is held, unacknowledged'
          on     | s1 | -1 | 'database durability: synchronous replication (synchronous_commit=on, synchronous_standby_names=''s1'', synchronous standbys connected: not visible to this role): an acknowledged charge survives the loss of the primary'
          on     | '' | 0  | 'database durability: NOT synchronous (synchronous_commit=on, synchronous_standby_names=''''): a charge acknowledged just before the primary is lost can be missing after a standby is promoted; set synchronous_standby_names (README, Running PostgreSQL in production)'
          off    | s1 | 1  | 'database durability: synchronous_commit is off (synchronous_commit=off, synchronous_standby_names=''s1''): a charge acknowledged just before PostgreSQL crashes can be lost even without a failover; set synchronous_commit = on for this role'
          """)
  void describe_settings_oneLineSayingWhatTheyGive(
      String commit, String names, int standbys, String expected) {
    assertThat(new Replication(commit, names, standbys).describe()).isEqualTo(expected);
  }
}
