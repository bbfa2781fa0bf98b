import Foundation
import MoatCore
import MoatTestSupport
import Testing

@testable import MoatVault

@Suite struct SecretInputTests {
    @Test("a password file loses one trailing newline; a value file is taken byte for byte")
    func files() throws {
        let temp = TemporaryDirectory()
        let path = try temp.write("pw", "a long password here\r\n")
        #expect(try SecretInput.password(from: .file(path), confirm: true) == secret("a long password here"))
        let valuePath = try temp.write("value", "-----BEGIN KEY-----\nabc\n")
        #expect(try SecretInput.value(from: .file(valuePath), name: "KEY") == secret("-----BEGIN KEY-----\nabc\n"))
    }

    @Test("short passwords and PINs, empty and oversized values, missing files are refused")
    func refusals() throws {
        let temp = TemporaryDirectory()
        let short = try temp.write("short", "elevenchars\n")
        #expect(vaultError { _ = try SecretInput.password(from: .file(short), confirm: false) }?.code == .badInput)
        let twelve = try temp.write("twelve", "twelve chars\n")
        #expect(throws: Never.self) { _ = try SecretInput.password(from: .file(twelve), confirm: false) }
        // Twelve characters, not twelve bytes.
        let unicode = try temp.write("unicode", "äöüäöüäöüäö\n")
        #expect(vaultError { _ = try SecretInput.password(from: .file(unicode), confirm: false) }?.code == .badInput)
        let pin = try temp.write("pin", "123\n")
        #expect(vaultError { _ = try SecretInput.pin(from: .file(pin), confirm: false) }?.code == .badInput)
        let empty = try temp.write("empty", "")
        #expect(vaultError { _ = try SecretInput.value(from: .file(empty), name: "X") }?.code == .invalidValue)
        let big = try temp.write("big", String(repeating: "x", count: SecretEntry.maximumValueBytes + 1))
        #expect(vaultError { _ = try SecretInput.value(from: .file(big), name: "X") }?.code == .invalidValue)
        let missing = vaultError { _ = try SecretInput.value(from: .file(temp.file("none")), name: "X") }
        #expect(missing?.code == .io)
        #expect(missing?.message.contains("No such file") == true)
    }

    @Test("recovery keys are 64 characters of base32 in groups of four, different every time")
    func recoveryKeys() throws {
        let one = RecoveryKey.generate()
        let two = RecoveryKey.generate()
        #expect(one != two)
        #expect(one.count == 64)
        let text = one.withUnsafeBytes { String(decoding: $0, as: UTF8.self) }
        let groups = text.split(separator: "-")
        #expect(groups.count == 13)
        #expect(groups.allSatisfy { $0.count == 4 })
        #expect(text.allSatisfy { "abcdefghijklmnopqrstuvwxyz234567-".contains($0) })
        #expect(throws: Never.self) { try SecretInput.checkPassword(one) }
    }
}
