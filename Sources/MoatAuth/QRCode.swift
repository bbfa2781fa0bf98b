import CQRencode

/// A QR code drawn by libqrencode (error correction level M, 8-bit mode), for TOTP enrolment.
public struct QRCode: Sendable {
    /// Modules per side (21 + 4 × (version − 1)).
    public let size: Int
    private let modules: [Bool]
    /// Light modules around the code, as the QR specification asks.
    static let quietZone = 4

    /// Encodes `text`; fails when it is too long for a QR code.
    public init(encoding text: String) throws(AuthError) {
        guard let code = QRcode_encodeString(text, 0, QR_ECLEVEL_M, QR_MODE_8, 1) else {
            throw AuthError(.invalidInput, "the text is too long for a QR code")
        }
        defer { QRcode_free(code) }
        let width = Int(code.pointee.width)
        size = width
        modules = (0..<width * width).map { code.pointee.data[$0] & 1 == 1 }
    }

    /// Whether the module at column `x`, row `y` is dark (outside the code: light).
    public func isDark(x: Int, y: Int) -> Bool {
        guard x >= 0, y >= 0, x < size, y < size else { return false }
        return modules[y * size + x]
    }

    /// A standalone SVG: a white square and one black path, no script, no external reference, only
    /// presentation attributes (so a strict Content-Security-Policy allows it inline).
    public func svg(moduleSize: Int = 6) -> String {
        let full = size + 2 * Self.quietZone
        var path = ""
        for y in 0..<size {
            for x in 0..<size where isDark(x: x, y: y) {
                path += "M\(x + Self.quietZone) \(y + Self.quietZone)h1v1h-1z"
            }
        }
        return "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 \(full) \(full)\" "
            + "width=\"\(full * moduleSize)\" height=\"\(full * moduleSize)\" shape-rendering=\"crispEdges\">"
            + "<rect width=\"\(full)\" height=\"\(full)\" fill=\"#ffffff\"/>"
            + "<path fill=\"#000000\" d=\"\(path)\"/></svg>"
    }

    /// The code as text: two module rows per line with half blocks. Drawn inverted — a dark module is
    /// a space, a light one a block — because terminals are usually light text on a dark background,
    /// and scanners need dark modules on a light field (the quiet zone included).
    public func terminalText() -> String {
        let lo = -Self.quietZone
        let hi = size + Self.quietZone
        var lines: [String] = []
        var y = lo
        while y < hi {
            var line = ""
            for x in lo..<hi {
                let top = !isDark(x: x, y: y)
                let bottom = y + 1 < hi ? !isDark(x: x, y: y + 1) : false
                switch (top, bottom) {
                case (true, true): line += "█"
                case (true, false): line += "▀"
                case (false, true): line += "▄"
                case (false, false): line += " "
                }
            }
            lines.append(line)
            y += 2
        }
        return lines.joined(separator: "\n")
    }
}
