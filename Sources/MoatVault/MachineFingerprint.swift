import Crypto
import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// What identifies this machine for the seal: host name, operating system, architecture and
/// `/etc/machine-id`.
///
/// None of it is secret: it binds the seal to a machine so that a copied state directory alone does
/// not open on another one, which is all it promises (Docs/Vault.md). It is the whole binding only
/// where no machine secret can be used (``SealMachine``). Tests inject their own.
public struct MachineFingerprint: Sendable, Equatable {
    public var hostname: String
    /// `uname -s`, e.g. `Linux`.
    public var operatingSystem: String
    /// `uname -m`, e.g. `x86_64`.
    public var architecture: String
    /// The contents of `/etc/machine-id` (or `/var/lib/dbus/machine-id`), empty when neither exists.
    public var machineID: String

    public init(hostname: String, operatingSystem: String, architecture: String, machineID: String) {
        self.hostname = hostname
        self.operatingSystem = operatingSystem
        self.architecture = architecture
        self.machineID = machineID
    }

    /// This machine's fingerprint, read now.
    public static func current() -> MachineFingerprint {
        var names = utsname()
        uname(&names)
        func field<T>(_ value: T) -> String {
            withUnsafeBytes(of: value) { raw in String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self) }
        }
        var machineID = ""
        for path in ["/etc/machine-id", "/var/lib/dbus/machine-id"] {
            if let text = try? String(contentsOfFile: path, encoding: .utf8) {
                machineID = text.trimmingCharacters(in: .whitespacesAndNewlines)
                if !machineID.isEmpty { break }
            }
        }
        return MachineFingerprint(
            hostname: field(names.nodename),
            operatingSystem: field(names.sysname),
            architecture: field(names.machine),
            machineID: machineID
        )
    }

    /// SHA-256 over the fields, each preceded by its length so no two different fingerprints hash the
    /// same input: the Argon2id secret of a fingerprint-only seal (the salt of a format-1 seal).
    var digest: [UInt8] {
        var input = Array("moat-seal-fingerprint-v1".utf8)
        for field in [hostname, operatingSystem, architecture, machineID] {
            let bytes = Array(field.utf8)
            input += [UInt8(bytes.count >> 8 & 0xff), UInt8(bytes.count & 0xff)] + bytes
        }
        return Array(SHA256.hash(data: input))
    }
}
