import Foundation
import Testing

@testable import MoatChannels

/// How the Matrix adapter cuts a long reply: every event's body, as the homeserver receives it (JSON), far
/// below Matrix's 64 KiB event limit, and nothing lost or broken at a cut.
@Suite struct MatrixAdapterTests {
    /// The body's size on the wire, measured by a real JSON encoder (not the adapter's own count).
    static func encodedSize(_ piece: String) throws -> Int {
        try JSONEncoder().encode(["body": piece]).count - #"{"body":""}"#.utf8.count
    }

    @Test("a long reply is cut into events whose JSON body fits the limit, at line breaks, with nothing lost")
    func splitsAtLines() throws {
        let line = "The garage door is closed; the lights are off. ✓ 🚪"
        let text = Array(repeating: line, count: 2000).joined(separator: "\n")  // about 110 KB
        let pieces = MatrixAdapter.pieces(text)
        #expect(pieces.count > 1)
        for piece in pieces { #expect(try Self.encodedSize(piece) <= MatrixAdapter.maximumPieceBytes) }
        #expect(pieces.joined(separator: "\n") == text)
        #expect(pieces.allSatisfy { $0.hasSuffix("🚪") })
    }

    @Test("characters JSON escapes (quotes, backslashes, slashes, control characters) count as their escaped size")
    func escapedCharacters() throws {
        for character in ["\"", "\\", "/", "\u{01}", "\u{7f}"] {
            let text = String(repeating: character, count: 40_000)
            let pieces = MatrixAdapter.pieces(text)
            #expect(pieces.count >= 2, "\(character.unicodeScalars.first!.value)")
            for piece in pieces { #expect(try Self.encodedSize(piece) <= MatrixAdapter.maximumPieceBytes) }
            #expect(pieces.joined() == text)
        }
    }

    @Test("one word longer than the limit is cut between whole characters, never inside an emoji")
    func longWord() throws {
        let text = String(repeating: "👩‍👩‍👧‍👦", count: 2000)  // 25 UTF-8 bytes each, no space
        let pieces = MatrixAdapter.pieces(text)
        #expect(pieces.count == 2)
        #expect(pieces.joined() == text)
        for piece in pieces {
            #expect(piece.allSatisfy { $0 == "👩‍👩‍👧‍👦" })
            #expect(try Self.encodedSize(piece) <= MatrixAdapter.maximumPieceBytes)
        }
        #expect(MatrixAdapter.pieces("short") == ["short"])
        #expect(MatrixAdapter.pieces("  \n ").isEmpty)
    }
}
