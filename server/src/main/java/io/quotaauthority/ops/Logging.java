package io.quotaauthority.ops;

import ch.qos.logback.classic.Logger;
import ch.qos.logback.classic.LoggerContext;
import ch.qos.logback.classic.encoder.JsonEncoder;
import ch.qos.logback.classic.spi.ILoggingEvent;
import ch.qos.logback.core.Appender;
import ch.qos.logback.core.ConsoleAppender;
import io.quotaauthority.config.Settings.LogFormat;
import org.slf4j.ILoggerFactory;
import org.slf4j.LoggerFactory;
import org.slf4j.bridge.SLF4JBridgeHandler;

/**
 * Chooses the log format at start-up. logback.xml writes human-readable lines through its appender
 * {@value #TEXT_APPENDER}; for {@code QUOTA_LOG_FORMAT=json} (or {@code --log-format json}) that
 * appender is swapped for one writing one JSON object per line to the same stdout, with logback's
 * own {@link JsonEncoder} (no extra dependency). Done in code rather than in logback.xml so the
 * flag, the environment and its validation stay in {@code Settings}.
 */
public final class Logging {
  public static final String TEXT_APPENDER = "TEXT";
  public static final String JSON_APPENDER = "JSON";

  private Logging() {}

  public static void apply(LogFormat format) {
    bridgeJavaUtilLogging();
    ILoggerFactory factory = LoggerFactory.getILoggerFactory();
    if (factory instanceof LoggerContext context) {
      apply(context, format);
    }
  }

  /**
   * gRPC and its shaded Netty log through java.util.logging, whose console handler writes plain
   * text to stderr whatever QUOTA_LOG_FORMAT says. Routes every such record to SLF4J (Logback)
   * instead, so it gets the same format and levels as ours; logback.xml's LevelChangePropagator
   * keeps java.util.logging's levels in step, so records Logback would drop are never even built.
   */
  static void bridgeJavaUtilLogging() {
    if (!SLF4JBridgeHandler.isInstalled()) {
      SLF4JBridgeHandler.removeHandlersForRootLogger();
      SLF4JBridgeHandler.install();
    }
  }

  static void apply(LoggerContext context, LogFormat format) {
    if (format != LogFormat.JSON) {
      return;
    }
    Logger root = context.getLogger(org.slf4j.Logger.ROOT_LOGGER_NAME);
    if (root.getAppender(JSON_APPENDER) != null) {
      return;
    }
    ConsoleAppender<ILoggingEvent> json = new ConsoleAppender<>();
    json.setContext(context);
    json.setName(JSON_APPENDER);
    json.setEncoder(jsonEncoder(context));
    json.start();
    root.addAppender(json);
    Appender<ILoggingEvent> text = root.getAppender(TEXT_APPENDER);
    if (text != null) {
      root.detachAppender(text);
      text.stop();
    }
  }

  /**
   * One JSON object per event: timestamp (epoch ms), level, thread, logger, the formatted message,
   * MDC and key-value pairs, and the throwable if any. Without logback's context block, sequence
   * numbers or the raw message pattern and its arguments.
   */
  public static JsonEncoder jsonEncoder(LoggerContext context) {
    JsonEncoder encoder = new JsonEncoder();
    encoder.setContext(context);
    encoder.setWithContext(false);
    encoder.setWithSequenceNumber(false);
    encoder.setWithNanoseconds(false);
    encoder.setWithMessage(false);
    encoder.setWithArguments(false);
    encoder.setWithFormattedMessage(true);
    encoder.start();
    return encoder;
  }
}
