import Foundation
import MoatCore
import Testing

@Suite struct SecretBytesTests {
    func bytes(_ text: String) -> SecretBytes {
        var array = Array(text.utf8)
        return SecretBytes(wiping: &array)
    }

    @Test("it prints as <redacted> in every form, and reflection shows no children")
    func redacted() {
        let secret = bytes("hunter2-but-longer")
        #expect(secret.description == "<redacted>")
        #expect(secret.debugDescription == "<redacted>")
        #expect("\(secret)" == "<redacted>")
        #expect(String(reflecting: secret) == "<redacted>")
        var dumped = ""
        dump(secret, to: &dumped)
        #expect(!dumped.contains("hunter2"))
        #expect(Mirror(reflecting: secret).children.isEmpty)
        #expect(!(secret is any Encodable))
        #expect(!(secret is any Decodable))
    }

    @Test("equality compares contents and lengths")
    func equality() {
        #expect(bytes("same value") == bytes("same value"))
        #expect(bytes("same value") != bytes("same valuf"))
        #expect(bytes("short") != bytes("short and longer"))
        #expect(bytes("") == bytes(""))
        #expect(bytes("").isEmpty)
    }

    @Test("the source array is wiped and the bytes are readable in place")
    func wipingInit() {
        var source = Array("value to protect".utf8)
        let secret = SecretBytes(wiping: &source)
        #expect(source.isEmpty)
        #expect(secret.count == 16)
        #expect(secret.withUnsafeBytes { Array($0) } == Array("value to protect".utf8))
    }

    @Test("wipe zeroes a buffer")
    func wipe() {
        var buffer: [UInt8] = Array(repeating: 0xaa, count: 100)
        buffer.withUnsafeMutableBytes { SecretBytes.wipe($0) }
        #expect(buffer.allSatisfy { $0 == 0 })
    }

    @Test("the bytes live in their own mapping, locked in RAM and excluded from core dumps")
    func lockedAndNotDumped() throws {
        let secret = SecretBytes(count: 64) { buffer in
            for index in buffer.indices { buffer[index] = UInt8(index) }
        }
        let address = secret.withUnsafeBytes { UInt(bitPattern: $0.baseAddress) }
        // procfs files report size 0: read until end of file rather than by the reported size.
        let handle = try #require(FileHandle(forReadingAtPath: "/proc/self/smaps"))
        let smaps = String(decoding: try handle.readToEnd() ?? Data(), as: UTF8.self)
        var inMapping = false
        var flags: String?
        for line in smaps.split(separator: "\n") {
            let fields = line.split(separator: " ")
            if let range = fields.first, range.contains("-"), !range.hasSuffix(":") {
                let bounds = range.split(separator: "-").compactMap { UInt($0, radix: 16) }
                inMapping = bounds.count == 2 && bounds[0] <= address && address < bounds[1]
            } else if inMapping && line.hasPrefix("VmFlags:") {
                flags = String(line)
            }
        }
        let vmFlags = try #require(flags, "no mapping found for the secret's address")
        #expect(vmFlags.contains(" dd"), "\(vmFlags)")
        if secret.isLocked {
            #expect(vmFlags.contains(" lo"), "\(vmFlags)")
        }
    }

    @Test("an initializer that throws releases the memory and rethrows")
    func throwingInitializer() {
        struct Refused: Error {}
        #expect(throws: Refused.self) {
            _ = try SecretBytes(count: 32) { _ in throw Refused() }
        }
    }
}
