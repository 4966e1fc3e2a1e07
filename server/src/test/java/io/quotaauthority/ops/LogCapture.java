package io.quotaauthority.ops;

import ch.qos.logback.classic.Level;
import ch.qos.logback.classic.Logger;
import ch.qos.logback.classic.LoggerContext;
import ch.qos.logback.classic.PatternLayout;
import ch.qos.logback.classic.encoder.JsonEncoder;
import ch.qos.logback.classic.spi.ILoggingEvent;
import ch.qos.logback.core.read.ListAppender;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.slf4j.LoggerFactory;

/**
 * Captures every log event of the process with the root logger at ALL, as an operator debugging
 * with root at TRACE would get: every logger without a level of its own logs everything; those that
 * logback.xml pins (e.g. Netty's frame logger, which would print the authorization header) keep
 * their level. Renders the events the two ways the server writes them: the text pattern of
 * logback.xml and the JSON lines of QUOTA_LOG_FORMAT=json.
 */
final class LogCapture implements AutoCloseable {
  static final String TEXT_PATTERN =
      "%d{yyyy-MM-dd'T'HH:mm:ss.SSSXXX} %-5level [%thread] %logger{20} - %msg%n";

  private final LoggerContext context = (LoggerContext) LoggerFactory.getILoggerFactory();
  private final ListAppender<ILoggingEvent> appender = new ListAppender<>();
  private final Map<Logger, Level> levels = new HashMap<>();
  private final Logger root = context.getLogger(org.slf4j.Logger.ROOT_LOGGER_NAME);

  LogCapture() {
    levels.put(root, root.getLevel());
    root.setLevel(Level.ALL);
    appender.setContext(context);
    appender.setName("CAPTURE");
    appender.start();
    root.addAppender(appender);
  }

  List<ILoggingEvent> events() {
    synchronized (appender.list) {
      return new ArrayList<>(appender.list);
    }
  }

  /** Every event as the text appender writes it (message, arguments, stack traces). */
  List<String> asText() {
    PatternLayout layout = new PatternLayout();
    layout.setContext(context);
    layout.setPattern(TEXT_PATTERN);
    layout.start();
    return events().stream().map(layout::doLayout).toList();
  }

  /** Every event as the JSON appender writes it. */
  List<String> asJson() {
    JsonEncoder encoder = Logging.jsonEncoder(context);
    return events().stream()
        .map(e -> new String(encoder.encode(e), StandardCharsets.UTF_8))
        .toList();
  }

  @Override
  public void close() {
    root.detachAppender(appender);
    appender.stop();
    levels.forEach(Logger::setLevel);
  }
}
