package io.quotaauthority.store;

import java.sql.Connection;
import java.sql.SQLException;
import java.sql.SQLTransientConnectionException;
import javax.sql.DataSource;
import org.postgresql.util.PSQLException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The one way this service writes: {@link #inTransaction} commits the work or rolls it back on any
 * throwable, retries only on serialization failure (40001) and deadlock (40P01), and never returns
 * null to signal failure: it throws.
 */
public final class Transactions {
  private static final Logger log = LoggerFactory.getLogger(Transactions.class);
  private static final int MAX_ATTEMPTS = 5;

  private final DataSource dataSource;

  public Transactions(DataSource dataSource) {
    this.dataSource = dataSource;
  }

  public DataSource dataSource() {
    return dataSource;
  }

  public <T> T inTransaction(SqlFunction<T> work) {
    for (int attempt = 1; ; attempt++) {
      try (Connection c = dataSource.getConnection()) {
        c.setAutoCommit(false);
        try {
          T result = work.apply(c);
          c.commit();
          return result;
        } catch (Throwable t) {
          rollbackQuietly(c, t);
          throw t;
        }
      } catch (SQLException e) {
        if (retryable(e) && attempt < MAX_ATTEMPTS) {
          log.debug("transaction attempt {} hit {}; retrying", attempt, e.getSQLState());
          continue;
        }
        throw translate(e);
      }
    }
  }

  static boolean retryable(SQLException e) {
    String state = e.getSQLState();
    return "40001".equals(state) || "40P01".equals(state);
  }

  /**
   * Connection trouble becomes {@link StoreUnavailableException}; anything else StoreException.
   * Either carries only the SQLState and PostgreSQL's primary message, and so does its cause (a
   * copy of the driver's exception with its stack trace): the driver's full message can hold the
   * server's Detail, Where and Hint, which quote row values (a key's hash in "Key (key_hash)=(...)"
   * or "Failing row contains (...)"), and whatever is logged of these exceptions must not.
   */
  public static StoreException translate(SQLException e) {
    String state = e.getSQLState();
    SQLException redacted = redacted(e);
    if (e instanceof SQLTransientConnectionException
        || (state != null
            && (state.startsWith("08") || state.equals("57P01") || state.equals("57P03")))) {
      return new StoreUnavailableException(
          "database unavailable: " + redacted.getMessage(), redacted);
    }
    return new StoreException("database error " + state + ": " + redacted.getMessage(), redacted);
  }

  /** The same SQLState, error code and stack trace; the message cut to {@link #shortMessage}. */
  static SQLException redacted(SQLException e) {
    SQLException r = new SQLException(shortMessage(e), e.getSQLState(), e.getErrorCode());
    r.setStackTrace(e.getStackTrace());
    return r;
  }

  /** PostgreSQL's primary message alone ("duplicate key value violates unique constraint ..."). */
  static String shortMessage(SQLException e) {
    if (e instanceof PSQLException p
        && p.getServerErrorMessage() != null
        && p.getServerErrorMessage().getMessage() != null) {
      return p.getServerErrorMessage().getMessage();
    }
    String m = e.getMessage() == null ? e.getClass().getSimpleName() : e.getMessage();
    // A client-side message (timeouts, a lost connection) has one line; anything after is detail.
    int nl = m.indexOf('\n');
    m = nl < 0 ? m : m.substring(0, nl);
    return m.length() <= 200 ? m : m.substring(0, 200) + "...";
  }

  private static void rollbackQuietly(Connection c, Throwable cause) {
    try {
      c.rollback();
    } catch (SQLException e) {
      cause.addSuppressed(e);
    }
  }
}
