import MoatCore

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// Replaces every vault value in a text with `[secret:NAME]`, in the encodings tools commonly print.
///
/// For each value of at least ``minimumLength`` bytes it looks for:
/// - the raw bytes (when the value is UTF-8 text);
/// - base64 and base64url, with and without padding, and the part of the encoding that is fixed
///   whatever bytes surround the value (so `base64("user:" + value)`, as in an HTTP Basic header, is
///   caught too) when that part is at least ``minimumEncodedCoreLength`` characters long;
/// - hex, lower and upper case;
/// - percent-encoding (RFC 3986 unreserved characters kept), with upper- and lower-case hex digits, and
///   the form encoding that writes a space as `+`.
///
/// Values shorter than four bytes are not scrubbed: replacing every occurrence of, say, `42` would
/// mangle ordinary output and tell the model where the value appears. `moat vault add` warns about them.
///
/// Matching is leftmost, then longest, so a secret that contains another is replaced whole. The
/// patterns themselves are derived from secrets, so they live in one ``SecretBytes`` arena.
struct SecretScrubber: Sendable {
    /// Values shorter than this are not scrubbed.
    static let minimumLength = 4
    /// Encoded fragments (unaligned base64) shorter than this are not searched for.
    static let minimumEncodedCoreLength = 8

    private struct Pattern: Sendable {
        let offset: Int
        let length: Int
        let name: Int
    }

    private let arena: SecretBytes
    private let patterns: [Pattern]
    private let names: [String]
    /// Pattern indices by their first byte, longest first.
    private let buckets: [[Int]]

    init(entries: some Sequence<SecretEntry>) {
        var generated: [(name: Int, bytes: [UInt8])] = []
        var names: [String] = []
        for entry in entries.sorted(by: { $0.name < $1.name }) where entry.value.count >= Self.minimumLength {
            names.append(entry.name)
            for form in entry.value.withUnsafeBytes(Self.forms) {
                generated.append((names.count - 1, form))
            }
        }
        let total = generated.reduce(0) { $0 + $1.bytes.count }
        var patterns: [Pattern] = []
        arena = SecretBytes(count: total) { buffer in
            var writer = ByteWriter(buffer: buffer)
            for item in generated {
                patterns.append(Pattern(offset: writer.offset, length: item.bytes.count, name: item.name))
                writer.append(item.bytes)
            }
        }
        for index in generated.indices {
            generated[index].bytes.withUnsafeMutableBytes { SecretBytes.wipe($0) }
        }
        var buckets = [[Int]](repeating: [], count: 256)
        arena.withUnsafeBytes { bytes in
            for (index, pattern) in patterns.enumerated() {
                buckets[Int(bytes[pattern.offset])].append(index)
            }
        }
        for first in buckets.indices {
            buckets[first].sort { patterns[$0].length > patterns[$1].length }
        }
        self.patterns = patterns
        self.names = names
        self.buckets = buckets
    }

    /// `text` with every occurrence of every value (in every form above) replaced by `[secret:NAME]`.
    func scrub(_ text: String) -> String {
        guard !patterns.isEmpty else { return text }
        return scan(text, final: true).scrubbed ?? text
    }

    /// Scrubs the part of `text` that no later text can change: `held` is the end of `text` from the
    /// first place where a value may begin that `text` ends inside of (empty when there is none). A
    /// caller that streams text prepends `held` to the next piece, and scrubs the last `held` with
    /// ``scrub(_:)``: the pieces it shows then add up to the scrub of the whole text.
    func scrubPrefix(_ text: String) -> (scrubbed: String, held: String) {
        guard !patterns.isEmpty else { return (text, "") }
        let (scrubbed, held) = scan(text, final: false)
        return (scrubbed ?? text, held)
    }

    /// Leftmost, then longest matching. Unless `final`, scanning stops where a value could begin that
    /// the text ends inside of (a longer value wins over a shorter one that already matches, so it waits
    /// too); the rest is returned as `held`. Values begin with an ASCII or a UTF-8 lead byte, so `held`
    /// starts on a character boundary. `scrubbed` is nil when nothing changed and nothing is held.
    private func scan(_ text: String, final: Bool) -> (scrubbed: String?, held: String) {
        var input = Array(text.utf8)
        defer { input.withUnsafeMutableBytes { SecretBytes.wipe($0) } }
        var output: [UInt8] = []
        output.reserveCapacity(input.count)
        var changed = false
        var stop = input.count
        arena.withUnsafeBytes { arenaBytes in
            input.withUnsafeBytes { source in
                var index = 0
                scanning: while index < source.count {
                    var matched: Pattern?
                    for candidate in buckets[Int(source[index])] {
                        let pattern = patterns[candidate]
                        let left = source.count - index
                        let compared = min(pattern.length, left)
                        guard
                            memcmp(source.baseAddress! + index, arenaBytes.baseAddress! + pattern.offset, compared)
                                == 0
                        else { continue }
                        if pattern.length <= left {
                            matched = pattern
                            break
                        }
                        if !final {
                            stop = index
                            break scanning
                        }
                    }
                    if let matched {
                        output += Array("[secret:\(names[matched.name])]".utf8)
                        index += matched.length
                        changed = true
                    } else {
                        output.append(source[index])
                        index += 1
                    }
                }
            }
        }
        let held = stop < input.count ? String(decoding: input[stop...], as: UTF8.self) : ""
        guard changed || !held.isEmpty else { return (nil, "") }
        return (String(decoding: output, as: UTF8.self), held)
    }

    /// Every form of `value` to search for, without duplicates.
    static func forms(_ value: UnsafeRawBufferPointer) -> [[UInt8]] {
        var bytes = Array(value)
        defer { bytes.withUnsafeMutableBytes { SecretBytes.wipe($0) } }
        var forms: [[UInt8]] = []
        func add(_ form: [UInt8]) {
            if !form.isEmpty && !forms.contains(form) { forms.append(form) }
        }
        if String(validating: bytes, as: UTF8.self) != nil { add(bytes) }
        for alphabet in [Base64.standard, Base64.url] {
            add(Base64.encode(bytes, alphabet: alphabet, padded: true))
            add(Base64.encode(bytes, alphabet: alphabet, padded: false))
            for alignment in 0..<3 {
                let core = Base64.alignedCore(bytes, alphabet: alphabet, alignment: alignment)
                if core.count >= minimumEncodedCoreLength { add(core) }
            }
        }
        add(Hex.digits(bytes, upper: false))
        add(Hex.digits(bytes, upper: true))
        for upper in [true, false] {
            add(PercentEncoding.encode(bytes, upperHex: upper, spaceAsPlus: false))
            add(PercentEncoding.encode(bytes, upperHex: upper, spaceAsPlus: true))
        }
        return forms
    }
}

/// RFC 4648 base64 with either alphabet.
enum Base64 {
    static let standard = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)
    static let url = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8)

    static func encode(_ bytes: [UInt8], alphabet: [UInt8], padded: Bool) -> [UInt8] {
        var output: [UInt8] = []
        output.reserveCapacity((bytes.count + 2) / 3 * 4)
        var index = 0
        while index < bytes.count {
            let chunk = Array(bytes[index..<min(index + 3, bytes.count)])
            let value =
                UInt32(chunk[0]) << 16 | UInt32(chunk.count > 1 ? chunk[1] : 0) << 8
                | UInt32(chunk.count > 2 ? chunk[2] : 0)
            let characters = chunk.count + 1
            for position in 0..<4 {
                if position < characters {
                    output.append(alphabet[Int((value >> (18 - 6 * UInt32(position))) & 0x3f)])
                } else if padded {
                    output.append(UInt8(ascii: "="))
                }
            }
            index += 3
        }
        return output
    }

    /// The characters of `bytes`' encoding that do not depend on the bytes around it, when `bytes`
    /// starts `alignment` bytes (0, 1 or 2) after a 3-byte group boundary of a longer input.
    static func alignedCore(_ bytes: [UInt8], alphabet: [UInt8], alignment: Int) -> [UInt8] {
        var shifted = [UInt8](repeating: 0, count: alignment) + bytes
        var encoded = encode(shifted, alphabet: alphabet, padded: false)
        defer {
            shifted.withUnsafeMutableBytes { SecretBytes.wipe($0) }
            encoded.withUnsafeMutableBytes { SecretBytes.wipe($0) }
        }
        // Characters 0..<skip mix in the preceding bytes; a last character that is only partly made of
        // the value mixes in the following byte.
        let skip = [0, 2, 3][alignment]
        let whole = shifted.count * 8 / 6
        guard whole > skip else { return [] }
        return Array(encoded[skip..<whole])
    }
}

enum PercentEncoding {
    static func isUnreserved(_ byte: UInt8) -> Bool {
        (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte) || (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte)
            || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) || byte == UInt8(ascii: "-")
            || byte == UInt8(ascii: ".") || byte == UInt8(ascii: "_") || byte == UInt8(ascii: "~")
    }

    static func encode(_ bytes: [UInt8], upperHex: Bool, spaceAsPlus: Bool) -> [UInt8] {
        var output: [UInt8] = []
        for byte in bytes {
            if isUnreserved(byte) {
                output.append(byte)
            } else if spaceAsPlus && byte == UInt8(ascii: " ") {
                output.append(UInt8(ascii: "+"))
            } else {
                output.append(UInt8(ascii: "%"))
                output += Hex.digits([byte], upper: upperHex)
            }
        }
        return output
    }
}
