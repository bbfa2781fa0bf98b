/// A long reply cut into messages a platform takes, measured in the platform's own unit.
enum TextPieces {
    /// `text` in pieces whose `measure` adds up to at most `limit`, in order, none empty or only whitespace.
    ///
    /// A piece ends at the last line break that fits, else at the last space, else (one word longer than
    /// the limit) at the last whole character that fits — never inside a character, so never inside a
    /// surrogate pair or an emoji sequence, and never inside a link or a mention (they hold no whitespace).
    /// The line break or space at a cut is dropped. A single character over the limit goes alone.
    static func split(_ text: String, limit: Int, measure: (Character) -> Int) -> [String] {
        var pieces: [String] = []
        var rest = Substring(text)
        while rest.reduce(0, { $0 + measure($1) }) > limit {
            // The longest prefix of whole characters within the limit.
            var end = rest.startIndex
            var size = 0
            for index in rest.indices {
                let next = measure(rest[index])
                if size + next > limit { break }
                size += next
                end = rest.index(after: index)
            }
            if end == rest.startIndex { end = rest.index(after: end) }
            let head = rest[..<end]
            if let cut = head.lastIndex(where: { $0 == "\n" || $0 == "\r\n" }) ?? head.lastIndex(where: \.isWhitespace),
                cut > rest.startIndex
            {
                append(rest[..<cut], to: &pieces)
                rest = rest[rest.index(after: cut)...]
            } else {
                append(head, to: &pieces)
                rest = rest[end...]
            }
        }
        append(rest, to: &pieces)
        return pieces
    }

    private static func append(_ piece: Substring, to pieces: inout [String]) {
        if piece.contains(where: { !$0.isWhitespace }) { pieces.append(String(piece)) }
    }
}
