/// Cutting a tool's result to its cap, with a marker where it was cut.
enum ToolText {
    /// `text` cut to at most `limit` UTF-8 bytes on a character boundary, followed by a marker line
    /// saying how much was cut; unchanged when it fits. Returns whether it was cut.
    static func capped(_ text: String, limit: Int, what: String = "the result") -> (text: String, truncated: Bool) {
        let size = text.utf8.count
        guard size > limit else { return (text, false) }
        var kept = 0
        var end = text.startIndex
        for index in text.indices {
            let next = text[index].utf8.count
            if kept + next > limit { break }
            kept += next
            end = text.index(after: index)
        }
        return (String(text[..<end]) + marker(what: what, kept: kept, total: size), true)
    }

    /// The marker added where a result was cut.
    static func marker(what: String, kept: Int, total: Int?) -> String {
        let whole = total.map { " of \($0)" } ?? ""
        return "\n[cut: \(what) was cut here after \(kept)\(whole) bytes]"
    }

    /// Bytes decoded as UTF-8, a malformed sequence becoming U+FFFD.
    static func lossy(_ bytes: some Collection<UInt8>) -> String {
        String(decoding: bytes, as: UTF8.self)
    }
}

extension ToolOutput {
    /// This output cut to `limit` bytes with a marker; `truncated` also when a part was cut before
    /// (`partCut`: a file, a stream, a listing).
    func capped(_ limit: Int, streamsCut partCut: Bool = false) -> ToolOutput {
        let capped = ToolText.capped(text, limit: limit)
        return ToolOutput(text: capped.text, external: external, truncated: truncated || partCut || capped.truncated)
    }
}
