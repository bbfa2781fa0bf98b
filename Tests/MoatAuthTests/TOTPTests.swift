import Foundation
import MoatAuth
import Testing

@Suite("Base32 and TOTP (RFC 4648, RFC 6238)")
struct TOTPTests {
    @Test(
        "RFC 4648 section 10 vectors",
        arguments: [
            ("", ""), ("f", "MY"), ("fo", "MZXQ"), ("foo", "MZXW6"), ("foob", "MZXW6YQ"), ("fooba", "MZXW6YTB"),
            ("foobar", "MZXW6YTBOI"),
        ])
    func base32Vectors(_ plain: String, _ encoded: String) {
        #expect(Base32.encode(Array(plain.utf8)) == encoded)
        #expect(Base32.decode(encoded) == Array(plain.utf8))
        #expect(Base32.decode(encoded.lowercased()) == Array(plain.utf8))
    }

    @Test("base32 round trips, ignores spaces and padding, rejects other characters")
    func base32Edges() {
        let secret = TOTP.generateSecret()
        #expect(secret.count == 20)
        #expect(Base32.decode(Base32.encode(secret)) == secret)
        #expect(Base32.decode("MZXW 6YTB OI======") == Array("foobar".utf8))
        #expect(Base32.decode("MZXW1") == nil)
        #expect(Base32.decode("MZ=XW") == nil)
        #expect(Base32.decode("MZXW!") == nil)
    }

    static let seeds: [TOTP.Algorithm: String] = [
        .sha1: "12345678901234567890",
        .sha256: "12345678901234567890123456789012",
        .sha512: "1234567890123456789012345678901234567890123456789012345678901234",
    ]

    @Test(
        "RFC 6238 Appendix B: every vector, SHA-1, SHA-256 and SHA-512, 8 digits",
        arguments: [
            (59.0, "94287082", "46119246", "90693936"),
            (1_111_111_109, "07081804", "68084774", "25091201"),
            (1_111_111_111, "14050471", "67062674", "99943326"),
            (1_234_567_890, "89005924", "91819424", "93441116"),
            (2_000_000_000, "69279037", "90698825", "38618901"),
            (20_000_000_000, "65353130", "77737706", "47863826"),
        ])
    func rfcVectors(_ time: Double, _ sha1: String, _ sha256: String, _ sha512: String) {
        let step = TOTP.step(at: Date(timeIntervalSince1970: time))
        for (algorithm, expected) in [(TOTP.Algorithm.sha1, sha1), (.sha256, sha256), (.sha512, sha512)] {
            let totp = TOTP(secret: Array(Self.seeds[algorithm]!.utf8), algorithm: algorithm)
            #expect(totp.code(atStep: step, digits: 8) == expected, "\(algorithm) at \(time)")
        }
    }

    @Test("6-digit codes: ±1 step accepted, ±2 rejected, replay rejected, malformed rejected")
    func window() {
        let totp = TOTP(secret: Array("12345678901234567890".utf8))
        let now = Date(timeIntervalSince1970: 1_800_000_015)
        let step = TOTP.step(at: now)
        #expect(totp.match(totp.code(atStep: step), at: now, after: 0) == step)
        #expect(totp.match(totp.code(atStep: step - 1), at: now, after: 0) == step - 1)
        #expect(totp.match(totp.code(atStep: step + 1), at: now, after: 0) == step + 1)
        #expect(totp.match(totp.code(atStep: step - 2), at: now, after: 0) == nil)
        #expect(totp.match(totp.code(atStep: step + 2), at: now, after: 0) == nil)
        // Replay: a code whose step was used already (or an earlier one) is refused.
        #expect(totp.match(totp.code(atStep: step), at: now, after: step) == nil)
        #expect(totp.match(totp.code(atStep: step - 1), at: now, after: step - 1) == nil)
        let code = totp.code(atStep: step)
        #expect(totp.match(String(code.prefix(3)) + " " + String(code.suffix(3)), at: now, after: 0) == step)
        for bad in ["", "12345", "1234567", "12345a", "１２３４５６", String(code.dropLast()) + "x"] {
            #expect(totp.match(bad, at: now, after: 0) == nil)
        }
    }

    @Test("the provisioning URI is the otpauth form apps read, with the label percent-encoded")
    func provisioningURI() {
        let uri = TOTP.provisioningURI(secret: Array("foobar".utf8), account: "alice smith@example.com")
        #expect(
            uri
                == "otpauth://totp/Moat:alice%20smith%40example.com?secret=MZXW6YTBOI&issuer=Moat&algorithm=SHA1&digits=6&period=30"
        )
    }
}

@Suite("QR code")
struct QRCodeTests {
    @Test("encodes an otpauth URI: valid size, finder patterns, one-path SVG, terminal blocks")
    func encode() throws {
        let uri = TOTP.provisioningURI(secret: TOTP.generateSecret(), account: "owner")
        let code = try QRCode(encoding: uri)
        #expect(code.size >= 21 && (code.size - 21) % 4 == 0)
        // The three finder patterns: a dark 7×7 ring with a dark 3×3 centre, in three corners.
        for (ox, oy) in [(0, 0), (code.size - 7, 0), (0, code.size - 7)] {
            for i in 0..<7 {
                #expect(code.isDark(x: ox + i, y: oy) && code.isDark(x: ox + i, y: oy + 6))
                #expect(code.isDark(x: ox, y: oy + i) && code.isDark(x: ox + 6, y: oy + i))
            }
            #expect(!code.isDark(x: ox + 1, y: oy + 1))
            #expect(code.isDark(x: ox + 3, y: oy + 3))
        }
        let svg = code.svg()
        #expect(svg.hasPrefix("<svg xmlns=\"http://www.w3.org/2000/svg\""))
        #expect(svg.contains("viewBox=\"0 0 \(code.size + 8) \(code.size + 8)\""))
        #expect(svg.components(separatedBy: "<path").count == 2)
        #expect(!svg.lowercased().contains("<script") && !svg.contains("href") && !svg.contains("style="))
        let lines = code.terminalText().split(separator: "\n", omittingEmptySubsequences: false)
        #expect(lines.count == (code.size + 8 + 1) / 2)
        #expect(Set(lines.map { $0.count }) == [code.size + 8])
        // The quiet zone is drawn light (blocks).
        #expect(lines[0].allSatisfy { $0 == "█" })
    }

    @Test("text too long for a QR code is refused")
    func tooLong() {
        #expect(throws: AuthError.self) { try QRCode(encoding: String(repeating: "x", count: 8000)) }
    }
}
