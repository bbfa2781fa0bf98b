import Crypto
import Foundation
import MoatCore
import MoatVault

/// Hex SHA-256, computed independently of the code under test.
enum SHA256Hex {
    static func of(_ text: String) -> String {
        SHA256.hash(data: Data(text.utf8)).map { String(format: "%02x", $0) }.joined()
    }
}

enum PasswordHashForTests {
    static func make(_ password: String) throws -> String {
        var bytes = Array(password.utf8)
        return try PasswordHash.make(SecretBytes(wiping: &bytes))
    }
}
