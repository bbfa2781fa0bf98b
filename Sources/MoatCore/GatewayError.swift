/// An error that stops the gateway from starting or a command from finishing.
///
/// Every message says what is wrong and how to fix it, and never holds a secret or a raw request.
public struct GatewayError: ClassifiedError, Sendable {
    /// What kind of failure this is; each maps to one process exit code.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        fileprivate enum Value: Hashable, Sendable {
            case configuration, bindRefused, tls, unsafeState, database, startup, vaultLocked, vaultDamaged
        }
        fileprivate let value: Value

        /// The config file (or a flag) is invalid.
        public static let configuration = Code(value: .configuration)
        /// The bind address is not loopback and TLS or authentication is missing.
        public static let bindRefused = Code(value: .bindRefused)
        /// The TLS certificate or key cannot be used.
        public static let tls = Code(value: .tls)
        /// The state directory or a secret-bearing file is accessible to others.
        public static let unsafeState = Code(value: .unsafeState)
        /// The database cannot be opened or is not Moat's.
        public static let database = Code(value: .database)
        /// The server could not start (for example, the port is taken).
        public static let startup = Code(value: .startup)
        /// The vault cannot be unlocked unattended (no seal and no terminal, a seal that does not open).
        public static let vaultLocked = Code(value: .vaultLocked)
        /// The vault or seal file is damaged or not Moat's.
        public static let vaultDamaged = Code(value: .vaultDamaged)

        public var description: String { "\(value)" }
    }

    public let code: Code
    public let message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { message }

    /// 78 (`EX_CONFIG`) for anything the owner fixes in configuration or file modes, 65 for unusable
    /// data, 1 otherwise.
    public var kind: FailureKind {
        switch code.value {
        case .configuration, .bindRefused, .tls, .unsafeState, .vaultLocked: .configuration
        case .database, .vaultDamaged: .dataError
        case .startup: .failure
        }
    }

    /// The exit code `moat` ends with for this error (its ``kind``'s).
    public var exitCode: Int32 { kind.exitCode }
}
