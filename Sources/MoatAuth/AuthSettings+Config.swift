public import Foundation
public import MoatCore

extension AuthSettings: ConfigSection {
    /// The limits may be made stricter, never looser than the defaults (ASVS level 2 and the window
    /// they are counted in): each key's allowed range.
    static let limitRanges: [(key: String, range: ClosedRange<Int>, unit: String)] = [
        ("password_failures", 1...10, ""), ("address_failures", 1...20, ""), ("totp_failures", 1...5, ""),
        ("setup_failures", 1...10, ""), ("window_minutes", 15...1440, " minutes"),
        ("concurrent_password_checks", 1...2, ""), ("session_idle_minutes", 1...120, " minutes"),
        ("session_max_hours", 1...24, " hours"),
    ]

    /// Reads `gateway.auth.limits`.
    public mutating func read(_ node: ConfigNode, path: String) throws(ConfigError) {
        for (key, value) in try node.mapping(path: path, allowed: Self.limitRanges.map(\.key)) {
            guard let limit = Self.limitRanges.first(where: { $0.key == key }) else { continue }
            let loosest = key == "window_minutes" ? "15 (shorter is looser)" : "\(limit.range.upperBound)"
            let number = try value.integer(
                path: path + "." + key, range: limit.range,
                allowed: "a whole number from \(limit.range.lowerBound) to \(limit.range.upperBound)\(limit.unit); "
                    + "the default \(loosest) is the loosest Moat allows")
            switch key {
            case "password_failures": passwordFailuresPerAccount = number
            case "address_failures": passwordFailuresPerAddress = number
            case "totp_failures": totpFailures = number
            case "setup_failures": setupFailuresPerAddress = number
            case "window_minutes": failureWindow = TimeInterval(number * 60)
            case "concurrent_password_checks": concurrentPasswordChecks = number
            case "session_idle_minutes": sessionIdleTimeout = TimeInterval(number * 60)
            default: sessionAbsoluteTimeout = TimeInterval(number * 3600)
            }
        }
    }
}
