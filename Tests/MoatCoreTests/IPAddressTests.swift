import MoatCore
import Testing

@Suite struct IPAddressTests {
    @Test(
        "loopback addresses are recognised in every form the bind policy sees",
        arguments: [
            "127.0.0.1", "127.255.0.9", "::1", "[::1]", "0:0:0:0:0:0:0:1", "::ffff:127.0.0.1", "::ffff:7f00:1",
        ])
    func loopback(_ text: String) throws {
        let address = try #require(IPAddress(text))
        #expect(address.isLoopback)
    }

    @Test(
        "non-loopback addresses are not loopback",
        arguments: [
            "0.0.0.0", "::", "10.0.0.1", "192.168.1.20", "128.0.0.1", "::2", "fe80::1", "::ffff:10.0.0.1", "1::1",
        ])
    func notLoopback(_ text: String) throws {
        let address = try #require(IPAddress(text))
        #expect(!address.isLoopback)
    }

    @Test("the any-address is unspecified in both families")
    func unspecified() throws {
        #expect(try #require(IPAddress("0.0.0.0")).isUnspecified)
        #expect(try #require(IPAddress("::")).isUnspecified)
        #expect(try #require(IPAddress("127.0.0.1")).isUnspecified == false)
    }

    @Test(
        "loose and malformed literals are rejected rather than guessed",
        arguments: [
            "127.1", "0x7f000001", "2130706433", "0177.0.0.1", "127.0.0.01", "256.0.0.1", "1.2.3", "1.2.3.4.5", "",
            "localhost", "::1::", "1:2:3:4:5:6:7:8:9", "12345::", "::g", "[::1", "1.2.3.4%eth0", ":::",
        ])
    func rejected(_ text: String) {
        #expect(IPAddress(text) == nil)
    }

    @Test("IPv6 text is printed in RFC 5952 form")
    func formatting() throws {
        #expect(try #require(IPAddress("0:0:0:0:0:0:0:1")).description == "::1")
        #expect(try #require(IPAddress("2001:DB8:0:0:1:0:0:1")).description == "2001:db8::1:0:0:1")
        #expect(try #require(IPAddress("fe80::1%eth0")).description == "fe80::1")
        #expect(try #require(IPAddress("10.1.2.3")).description == "10.1.2.3")
        #expect(try #require(IPAddress("::ffff:7f00:1")).ipv4Mapped == 0x7f00_0001)
    }

    @Test("bytes round-trip for both families")
    func bytes() throws {
        let v4 = try #require(IPAddress("192.0.2.7"))
        #expect(IPAddress(bytes: v4.bytes) == v4)
        let v6 = try #require(IPAddress("2606:4700:4700::1111"))
        #expect(v6.bytes.count == 16)
        #expect(IPAddress(bytes: v6.bytes) == v6)
        #expect(IPAddress(bytes: [1, 2, 3]) == nil)
    }
}
