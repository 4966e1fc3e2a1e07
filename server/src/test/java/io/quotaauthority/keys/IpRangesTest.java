package io.quotaauthority.keys;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.ValueSource;

class IpRangesTest {

  @ParameterizedTest(name = "{0} -> {1}")
  @CsvSource({
    "10.0.0.0/8, 10.0.0.0/8",
    "203.0.113.7, 203.0.113.7/32",
    "0.0.0.0/0, 0.0.0.0/0",
    "2001:DB8::/32, 2001:db8::/32",
    "2001:0db8:0000:0000:0000:0000:0000:0001, 2001:db8::1/128",
    "::/0, ::/0",
    "fe80::/10, fe80::/10",
    // RFC 5952: the longest zero run becomes "::".
    "2001:db8:0:0:1:0:0:0/80, 2001:db8:0:0:1::/80",
    // IPv4-mapped IPv6 is the IPv4 address it maps.
    "::ffff:192.0.2.1, 192.0.2.1/32",
  })
  void parse_validEntry_storedCanonical(String entry, String canonical) {
    assertThat(IpRanges.parse("ip_allow", List.of(entry)).entries()).containsExactly(canonical);
  }

  @ParameterizedTest(name = "{0}")
  @CsvSource(
      delimiter = '|',
      value = {
        "10.0.0.0/33|ip_allow[0] '10.0.0.0/33' has prefix length 33; at most 32",
        "10.0.0.1/8|ip_allow[0] '10.0.0.1/8' has bits set after its /8 prefix; write the network,"
            + " 10.0.0.0/8",
        "256.0.0.0/8|ip_allow[0] '256.0.0.0/8' is not an IPv4 or IPv6 CIDR block",
        "10.0.0/8|ip_allow[0] '10.0.0/8' is not an IPv4 or IPv6 CIDR block",
        "010.0.0.0/8|ip_allow[0] '010.0.0.0/8' is not an IPv4 or IPv6 CIDR block",
        "example.com|ip_allow[0] 'example.com' is not an IPv4 or IPv6 CIDR block",
        "fe80::1%eth0|ip_allow[0] 'fe80::1%eth0' is not an IPv4 or IPv6 CIDR block",
        "2001:db8:::/32|ip_allow[0] '2001:db8:::/32' is not an IPv4 or IPv6 CIDR block",
        "2001:db8::/129|ip_allow[0] '2001:db8::/129' has prefix length 129; at most 128",
        "10.0.0.0/|ip_allow[0] '10.0.0.0/' has no prefix length from 0 to 32 after '/'",
        "10.0.0.0/-1|ip_allow[0] '10.0.0.0/-1' has no prefix length from 0 to 32 after '/'",
        "10.0.0.0/08|ip_allow[0] '10.0.0.0/08' has no prefix length from 0 to 32 after '/'",
        "10.0.0.0/ 8|ip_allow[0] '10.0.0.0/ 8' has no prefix length from 0 to 32 after '/'",
      })
  void parse_malformedEntry_refusedNamingFieldIndexAndEntry(String entry, String message) {
    assertThatThrownBy(() -> IpRanges.parse("ip_allow", List.of("192.0.2.0/24", entry)))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageStartingWith(message.replace("ip_allow[0]", "ip_allow[1]"));
  }

  @Test
  void parse_emptyEntry_refusedNamingIt() {
    assertThatThrownBy(() -> IpRanges.parse("key.ip_deny", List.of("")))
        .hasMessageStartingWith("key.ip_deny[0] must be an IPv4 or IPv6 address or CIDR block");
  }

  @Test
  void parse_moreThanTheBound_refusedNamingTheField() {
    List<String> many = new ArrayList<>();
    for (int i = 0; i <= IpRanges.MAX_ENTRIES; i++) {
      many.add("10.0." + (i / 256) + "." + (i % 256));
    }
    assertThatThrownBy(() -> IpRanges.parse("ip_allow", many))
        .hasMessage("ip_allow has 101 entries; at most 100 are allowed");
    assertThat(IpRanges.parse("ip_allow", many.subList(0, 100)).entries()).hasSize(100);
  }

  @Test
  void parse_duplicates_keptOnceInOrder() {
    assertThat(
            IpRanges.parse("ip_allow", List.of("10.0.0.0/8", "192.0.2.1", "10.0.0.0/8")).entries())
        .containsExactly("10.0.0.0/8", "192.0.2.1/32");
  }

  @ParameterizedTest(name = "{0} in {1}: {2}")
  @CsvSource({
    "10.1.2.3, 10.0.0.0/8, true",
    "11.0.0.0, 10.0.0.0/8, false",
    "10.255.255.255, 10.0.0.0/8, true",
    "192.0.2.128, 192.0.2.128/25, true",
    "192.0.2.127, 192.0.2.128/25, false",
    "1.2.3.4, 0.0.0.0/0, true",
    "::ffff:10.1.2.3, 10.0.0.0/8, true",
    "2001:db8:ffff::1, 2001:db8::/32, true",
    "2001:db9::1, 2001:db8::/32, false",
    "2001:db8::1, 0.0.0.0/0, false",
    "10.0.0.1, ::/0, false",
    "::1, ::1/128, true",
  })
  void contains_addressAndBlock_matchesByPrefix(String address, String block, boolean in) {
    assertThat(IpRanges.parse("ip_allow", List.of(block)).contains(IpRanges.address(address)))
        .isEqualTo(in);
  }

  @Test
  void address_notALiteral_null() {
    assertThat(IpRanges.address("")).isNull();
    assertThat(IpRanges.address(null)).isNull();
    assertThat(IpRanges.address("localhost")).isNull();
    assertThat(IpRanges.address("/var/run/envoy.sock")).isNull();
  }

  @ParameterizedTest(name = "{0}")
  @ValueSource(
      strings = {
        "1.2.3",
        "1.2.3.4.5",
        "1..2.3",
        "1.2.3.",
        ".1.2.3",
        "1.2.3.04",
        "00.1.2.3",
        "1.2.3.256",
        "1.2.3.1000",
        "1.2.3.4 ",
        " 1.2.3.4",
        "1.2.3.-4",
        "1.2.3.+4",
        "\u0661.2.3.4",
        "1.2.3.4/32",
        "...."
      })
  void address_malformedIpv4_null(String text) {
    assertThat(IpRanges.address(text)).isNull();
  }

  @ParameterizedTest(name = "{0}")
  @CsvSource({
    "0.0.0.0, 0, 0, 0, 0",
    "255.255.255.255, 255, 255, 255, 255",
    "10.0.200.9, 10, 0, 200, 9",
    "192.168.100.10, 192, 168, 100, 10"
  })
  void address_ipv4_octets(String text, int a, int b, int c, int d) {
    assertThat(IpRanges.address(text)).containsExactly((byte) a, (byte) b, (byte) c, (byte) d);
  }

  @Test
  void of_storedEntryNotCanonical_matchesNothing() {
    IpRanges stored = IpRanges.of(List.of("garbage", "10.0.0.0/8"));
    assertThat(stored.contains(IpRanges.address("10.0.0.1"))).isTrue();
    assertThat(IpRanges.of(Collections.singletonList("garbage")).contains(new byte[4])).isFalse();
  }
}
