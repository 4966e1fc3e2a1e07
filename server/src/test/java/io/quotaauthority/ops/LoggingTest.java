package io.quotaauthority.ops;

import static org.assertj.core.api.Assertions.assertThat;

import ch.qos.logback.classic.Logger;
import ch.qos.logback.classic.LoggerContext;
import ch.qos.logback.classic.encoder.PatternLayoutEncoder;
import ch.qos.logback.classic.spi.ILoggingEvent;
import ch.qos.logback.core.ConsoleAppender;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.quotaauthority.config.Settings.LogFormat;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import org.junit.jupiter.api.Test;

/** QUOTA_LOG_FORMAT: text keeps logback.xml's appender, json swaps it for JSON lines on stdout. */
class LoggingTest {
  private static final ObjectMapper JSON = new ObjectMapper();

  /** A context set up like logback.xml: a console appender named TEXT on the root logger. */
  private static LoggerContext textContext() {
    LoggerContext context = new LoggerContext();
    context.setMDCAdapter(new ch.qos.logback.classic.util.LogbackMDCAdapter());
    PatternLayoutEncoder encoder = new PatternLayoutEncoder();
    encoder.setContext(context);
    encoder.setPattern(LogCapture.TEXT_PATTERN);
    encoder.start();
    ConsoleAppender<ILoggingEvent> text = new ConsoleAppender<>();
    text.setContext(context);
    text.setName(Logging.TEXT_APPENDER);
    text.setEncoder(encoder);
    text.start();
    context.getLogger(org.slf4j.Logger.ROOT_LOGGER_NAME).addAppender(text);
    return context;
  }

  private static String stdoutOf(Runnable r) {
    PrintStream old = System.out;
    ByteArrayOutputStream buf = new ByteArrayOutputStream();
    System.setOut(new PrintStream(buf, true, StandardCharsets.UTF_8));
    try {
      r.run();
    } finally {
      System.setOut(old);
    }
    return buf.toString(StandardCharsets.UTF_8);
  }

  @Test
  void apply_json_writesOneJsonObjectPerLineInsteadOfText() throws Exception {
    LoggerContext context = textContext();
    Logging.apply(context, LogFormat.JSON);
    Logger log = context.getLogger("io.quotaauthority.Example");

    String out =
        stdoutOf(
            () -> {
              log.info("admin {} key_id={} actor={}", "create", 42, "admin:alice");
              log.warn("with \"quotes\"\nand a newline", new IllegalStateException("boom"));
            });

    Logger root = context.getLogger(org.slf4j.Logger.ROOT_LOGGER_NAME);
    assertThat(root.getAppender(Logging.TEXT_APPENDER)).isNull();
    assertThat(root.getAppender(Logging.JSON_APPENDER)).isNotNull();
    String[] lines = out.split("\n");
    assertThat(lines).hasSize(2);
    JsonNode first = JSON.readTree(lines[0]);
    assertThat(first.get("level").asText()).isEqualTo("INFO");
    assertThat(first.get("loggerName").asText()).isEqualTo("io.quotaauthority.Example");
    assertThat(first.get("formattedMessage").asText())
        .isEqualTo("admin create key_id=42 actor=admin:alice");
    assertThat(first.has("timestamp")).isTrue();
    assertThat(first.has("context")).isFalse();
    JsonNode second = JSON.readTree(lines[1]);
    assertThat(second.get("formattedMessage").asText()).isEqualTo("with \"quotes\"\nand a newline");
    assertThat(second.get("throwable").get("message").asText()).isEqualTo("boom");
    context.stop();
  }

  @Test
  void apply_text_keepsTheTextAppender() {
    LoggerContext context = textContext();
    Logging.apply(context, LogFormat.TEXT);
    Logger log = context.getLogger("io.quotaauthority.Example");

    String out = stdoutOf(() -> log.info("hello {}", "world"));

    assertThat(out).matches("\\S+ INFO  \\[.*] i.q.Example - hello world\\n");
    assertThat(
            context.getLogger(org.slf4j.Logger.ROOT_LOGGER_NAME).getAppender(Logging.JSON_APPENDER))
        .isNull();
    context.stop();
  }
}
