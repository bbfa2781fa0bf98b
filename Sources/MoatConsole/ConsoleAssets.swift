import HTTPTypes
import Hummingbird
import NIOCore

/// The console's one style sheet and one script, served at a path that names a hash of their content
/// (`/assets/moat.<hash>.css`) with a year-long immutable cache: a new build changes the path, so a
/// browser never runs an old script against new pages. Same origin only (the CSP allows nothing else).
struct ConsoleAsset: Sendable {
    let path: String
    let text: String
    let type: String

    init(name: String, ext: String, text: String, type: String) {
        // FNV-1a 64: a cache key, not a security boundary.
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in text.utf8 {
            hash ^= UInt64(byte)
            hash &*= 0x0000_0100_0000_01b3
        }
        let hex = String(hash, radix: 16)
        path = "/assets/\(name).\(String(repeating: "0", count: 16 - hex.count) + hex).\(ext)"
        self.text = text
        self.type = type
    }

    var response: Response {
        Response(
            status: .ok,
            headers: [.contentType: type, .cacheControl: "public, max-age=31536000, immutable"],
            body: .init(byteBuffer: ByteBuffer(string: text)))
    }
}

enum ConsoleAssets {
    static let style = ConsoleAsset(
        name: "moat", ext: "css", text: DashboardPages.style, type: "text/css; charset=utf-8")
    static let script = ConsoleAsset(
        name: "moat", ext: "js", text: DashboardPages.script, type: "text/javascript; charset=utf-8")
}
