package io.quotaauthority.store;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.catchThrowableOfType;

import com.zaxxer.hikari.HikariDataSource;
import io.quotaauthority.keys.KeyHash;
import io.quotaauthority.testing.TestDatabase;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.math.BigDecimal;
import java.util.HexFormat;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * A database error that quotes row values (a unique violation on key_hash) reaches the exception,
 * and so any log line printing it, as its SQLState and PostgreSQL's primary message only: neither
 * the Detail "Key (key_hash)=(\x...)" nor any byte of the hash. Through the server's own pool
 * configuration against a real PostgreSQL.
 */
class ErrorDetailIT {
  private static TestDatabase db;
  private static HikariDataSource pool;

  @BeforeAll
  static void start() {
    db = TestDatabase.create();
    pool = new HikariDataSource(Database.poolConfig(db.url(), "postgres", "", 2));
    Database.migrate(pool);
  }

  @AfterAll
  static void stop() {
    pool.close();
    db.close();
  }

  private static String everything(Throwable t) {
    StringWriter out = new StringWriter();
    t.printStackTrace(new PrintWriter(out));
    return out.toString();
  }

  @Test
  void insert_duplicateKeyHash_storeExceptionWithStateAndShortMessageOnly() {
    byte[] hash = new byte[32];
    for (int i = 0; i < hash.length; i++) {
      hash[i] = (byte) (0xA0 + i);
    }
    KeyHash keyHash = KeyHash.of(hash);
    Transactions tx = new Transactions(pool);
    KeyRepository keys = new KeyRepository(tx);
    tx.inTransaction(c -> keys.insert(c, "first", keyHash, "sk-aaaaa", BigDecimal.ZERO, null));

    StoreException e =
        catchThrowableOfType(
            StoreException.class,
            () ->
                tx.inTransaction(
                    c -> keys.insert(c, "second", keyHash, "sk-aaaaa", BigDecimal.ZERO, null)));

    assertThat(e).isNotNull();
    assertThat(e.getMessage())
        .startsWith("database error 23505: duplicate key value violates unique constraint");
    String printed = everything(e);
    String hex = HexFormat.of().formatHex(hash);
    assertThat(printed)
        .doesNotContain("Detail:", "Key (key_hash)", hex.substring(2, 20), "Failing row");
  }

  @Test
  void poolConfig_anyConnection_serverErrorDetailOff() {
    assertThat(
            Database.poolConfig(db.url(), "postgres", "", 2)
                .getDataSourceProperties()
                .getProperty("logServerErrorDetail"))
        .isEqualTo("false");
  }
}
