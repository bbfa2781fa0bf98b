public import Foundation
public import MoatCore
import MoatNet

extension PolicySettings: ConfigSection {
    /// Reads `policy:` (trust defaults per domain, the evidence rule, approval lifetime, SSRF lists).
    public mutating func read(_ node: ConfigNode, path: String) throws(ConfigError) {
        let keys = ["trust", "evidence_approvals", "approval_expiry_minutes", "ssrf"]
        for (key, value) in try node.mapping(path: path, allowed: keys) {
            let keyPath = path + "." + key
            switch key {
            case "trust":
                for (domain, levelNode) in try value.mapping(
                    path: keyPath, allowed: TrustDomain.allCases.map(\.rawValue))
                {
                    let level = try levelNode.integer(
                        path: keyPath + "." + domain, range: 0...4, allowed: "a trust level from 0 to 4")
                    trustDefaults[TrustDomain(rawValue: domain)!] = TrustLevel(rawValue: level)!
                }
            case "evidence_approvals":
                evidenceApprovals = try value.integer(
                    path: keyPath, range: 1...1000, allowed: "a number of approvals from 1 to 1000")
            case "approval_expiry_minutes":
                let minutes = try value.integer(path: keyPath, range: 1...10080, allowed: "minutes from 1 to 10080")
                approvalLifetime = TimeInterval(minutes * 60)
            default:
                try ssrf.read(value, path: keyPath)
            }
        }
    }
}
