package io.quotaauthority.metering;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

class SseEventSplitterTest {

  /** Collects each event's data the way the SSE spec defines it (lines joined by '\n'). */
  private static final class Events implements SseEventSplitter.Listener {
    final List<String> events = new ArrayList<>();
    private final ByteArrayOutputStream current = new ByteArrayOutputStream();

    @Override
    public void data(byte[] bytes, int offset, int length) {
      current.write(bytes, offset, length);
    }

    @Override
    public void dataLineEnd() {
      current.write('\n');
    }

    @Override
    public void eventEnd() {
      String s = current.toString(StandardCharsets.UTF_8);
      events.add(s.endsWith("\n") ? s.substring(0, s.length() - 1) : s);
      current.reset();
    }
  }

  static Stream<Arguments> streams() {
    return Stream.of(
        Arguments.of("LF", "data: a\n\ndata: b\n\n", List.of("a", "b")),
        Arguments.of("CRLF", "data: a\r\n\r\ndata: b\r\n\r\n", List.of("a", "b")),
        Arguments.of("CR only", "data: a\r\rdata: b\r\r", List.of("a", "b")),
        Arguments.of(
            "event and id fields ignored",
            "event: message_start\nid: 7\nretry: 10\ndata: {\"x\":1}\n\n",
            List.of("{\"x\":1}")),
        Arguments.of("comment lines", ": keep-alive\n\ndata: a\n: more\n\n", List.of("a")),
        Arguments.of("multi-line data", "data: one\ndata: two\n\n", List.of("one\ntwo")),
        Arguments.of("no space after colon", "data:tight\n\n", List.of("tight")),
        Arguments.of(
            "only the first space is dropped", "data:  two spaces\n\n", List.of(" two spaces")),
        Arguments.of("data without colon", "data\n\n", List.of("")),
        Arguments.of(
            "event without data is not an event", "event: ping\n\ndata: a\n\n", List.of("a")),
        Arguments.of("field names are case-sensitive", "Data: x\n\ndata: y\n\n", List.of("y")),
        Arguments.of("long field name", "datadatadatadata: x\n\ndata: y\n\n", List.of("y")),
        Arguments.of(
            "unterminated last event counts at end", "data: a\n\ndata: tail", List.of("a", "tail")),
        Arguments.of("utf-8 data", "data: héllo 👋\n\n", List.of("héllo 👋")));
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("streams")
  void feed_splitAtEveryPair_yieldsSameEvents(String name, String stream, List<String> expected) {
    byte[] b = stream.getBytes(StandardCharsets.UTF_8);
    for (int i = 0; i <= b.length; i++) {
      for (int j = i; j <= b.length; j++) {
        Events events = new Events();
        SseEventSplitter s = new SseEventSplitter(events);
        s.feed(b, 0, i);
        s.feed(b, i, j - i);
        s.feed(b, j, b.length - j);
        s.end();
        assertThat(events.events).as("cuts %d, %d", i, j).isEqualTo(expected);
      }
    }
  }
}
