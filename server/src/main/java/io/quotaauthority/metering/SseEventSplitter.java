package io.quotaauthority.metering;

/**
 * Splits a {@code text/event-stream} body into events as its bytes arrive, in chunks split at any
 * byte (inside a line ending, a field name or a UTF-8 character). It follows the SSE framing rules:
 * lines end with CRLF, LF or CR; an empty line ends an event; a line starting with ':' is a
 * comment; "data:" may be followed by one space that is not part of the value.
 *
 * <p>Data is not collected: the bytes of each {@code data} value are handed on as they come, so an
 * event of any size costs nothing here. What stays between chunks is at most a few bytes of a field
 * name and whether the last byte was a CR.
 */
final class SseEventSplitter {

  /** Receives the data of each event, in pieces. */
  interface Listener {
    /** Part of a data line's value. */
    void data(byte[] bytes, int offset, int length);

    /** A data line ended (several data lines of one event are joined by a newline). */
    void dataLineEnd();

    /** An event with at least one data line ended. */
    void eventEnd();
  }

  private static final byte[] DATA = {'d', 'a', 't', 'a'};

  /** Longer field names cannot be "data", so only this many bytes are kept. */
  private static final int MAX_FIELD_BYTES = 8;

  private static final int LINE_START = 0;
  private static final int FIELD_NAME = 1;
  private static final int DATA_VALUE_START = 2;
  private static final int DATA_VALUE = 3;
  private static final int SKIP_LINE = 4;

  private final Listener listener;
  private int state = LINE_START;
  private final byte[] field = new byte[MAX_FIELD_BYTES];
  private int fieldLen;

  /** The previous byte was a CR, so an LF now completes the same line ending. */
  private boolean afterCr;

  private boolean eventHasData;

  SseEventSplitter(Listener listener) {
    this.listener = listener;
  }

  /** Bytes kept between chunks. */
  int retainedBytes() {
    return field.length;
  }

  void feed(byte[] bytes, int offset, int length) {
    int end = offset + length;
    int i = offset;
    while (i < end) {
      byte c = bytes[i];
      if (afterCr) {
        afterCr = false;
        if (c == '\n') {
          i++;
          continue;
        }
      }
      if (c == '\r' || c == '\n') {
        afterCr = c == '\r';
        lineEnd();
        i++;
        continue;
      }
      switch (state) {
        case LINE_START:
          if (c == ':') {
            state = SKIP_LINE;
          } else {
            fieldLen = 0;
            state = FIELD_NAME;
            fieldByte(c);
          }
          i++;
          break;
        case FIELD_NAME:
          fieldByte(c);
          i++;
          break;
        case DATA_VALUE_START:
          state = DATA_VALUE;
          if (c == ' ') {
            i++;
          }
          break;
        case DATA_VALUE:
          {
            // Hand on the run of value bytes up to the line end in one piece.
            int runEnd = i;
            while (runEnd < end && bytes[runEnd] != '\n' && bytes[runEnd] != '\r') {
              runEnd++;
            }
            listener.data(bytes, i, runEnd - i);
            i = runEnd;
            break;
          }
        default: // SKIP_LINE
          i++;
      }
    }
  }

  /** The body ended: an event still open (no closing blank line) counts as ended. */
  void end() {
    if (state == DATA_VALUE || state == DATA_VALUE_START) {
      listener.dataLineEnd();
    } else if (state == FIELD_NAME && isData()) {
      eventHasData = true;
      listener.dataLineEnd();
    }
    state = LINE_START;
    if (eventHasData) {
      eventHasData = false;
      listener.eventEnd();
    }
  }

  private void fieldByte(byte c) {
    if (c == ':') {
      if (isData()) {
        eventHasData = true;
        state = DATA_VALUE_START;
      } else {
        state = SKIP_LINE;
      }
    } else if (fieldLen < field.length) {
      field[fieldLen++] = c;
    } else {
      state = SKIP_LINE;
    }
  }

  private void lineEnd() {
    switch (state) {
      case LINE_START:
        if (eventHasData) {
          eventHasData = false;
          listener.eventEnd();
        }
        break;
      case FIELD_NAME:
        // A line with no colon is a field with an empty value.
        if (isData()) {
          eventHasData = true;
          listener.dataLineEnd();
        }
        break;
      case DATA_VALUE_START:
      case DATA_VALUE:
        listener.dataLineEnd();
        break;
      default:
        break;
    }
    state = LINE_START;
  }

  private boolean isData() {
    if (fieldLen != DATA.length) {
      return false;
    }
    for (int i = 0; i < DATA.length; i++) {
      if (field[i] != DATA[i]) {
        return false;
      }
    }
    return true;
  }
}
