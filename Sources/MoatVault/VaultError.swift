import MoatCore

/// An error from the vault: opening, unlocking, changing or using it.
///
/// `message` says what failed and what to do about it. It may name a secret and the policy rule that
/// refused it, and the path of a file, but it never holds a secret's value, a password or a PIN.
public struct VaultError: Error, CustomStringConvertible, Sendable {
    /// What kind of failure this is, for callers that branch on it.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        fileprivate enum Value: Hashable, Sendable {
            case notFound, alreadyExists, cannotDecrypt, corrupt, unsupportedVersion, weakParameters
            case invalidName, invalidPolicy, invalidValue, unknownSecret, duplicateSecret
            case policyDenied, invalidPlaceholder, sealDidNotOpen, notSealed, badInput, noTerminal
            case cancelled, changedElsewhere, rolledBack, io
        }
        fileprivate let value: Value

        /// There is no vault file (or no seal file) at the path.
        public static let notFound = Code(value: .notFound)
        /// A vault already exists where a new one was to be created.
        public static let alreadyExists = Code(value: .alreadyExists)
        /// Authentication failed: the password is wrong, or the file was changed or damaged.
        public static let cannotDecrypt = Code(value: .cannotDecrypt)
        /// The file is not a well-formed vault (or seal) file; the message says where.
        public static let corrupt = Code(value: .corrupt)
        /// The file was written by a newer Moat (unknown format version or key-derivation function).
        public static let unsupportedVersion = Code(value: .unsupportedVersion)
        /// The header asks for weaker key derivation than Moat accepts (the downgrade guard), or for
        /// absurdly expensive derivation.
        public static let weakParameters = Code(value: .weakParameters)
        /// A secret name does not match `[A-Z][A-Z0-9_]{0,63}`.
        public static let invalidName = Code(value: .invalidName)
        /// A tool or host in a secret policy is not valid.
        public static let invalidPolicy = Code(value: .invalidPolicy)
        /// A value is empty or too large.
        public static let invalidValue = Code(value: .invalidValue)
        /// No secret has that name.
        public static let unknownSecret = Code(value: .unknownSecret)
        /// A secret with that name exists already.
        public static let duplicateSecret = Code(value: .duplicateSecret)
        /// A placeholder names a secret whose policy does not allow this tool or destination.
        public static let policyDenied = Code(value: .policyDenied)
        /// A `{{secret:…}}` placeholder is malformed.
        public static let invalidPlaceholder = Code(value: .invalidPlaceholder)
        /// The seal does not open: another machine, a changed fingerprint, or a wrong PIN.
        public static let sealDidNotOpen = Code(value: .sealDidNotOpen)
        /// The vault has no seal.
        public static let notSealed = Code(value: .notSealed)
        /// A password or PIN was refused (too short, the two entries differ, not for this vault).
        public static let badInput = Code(value: .badInput)
        /// A password or PIN is needed and there is no terminal to ask on.
        public static let noTerminal = Code(value: .noTerminal)
        /// The owner cancelled at a prompt.
        public static let cancelled = Code(value: .cancelled)
        /// The vault was re-keyed by another process and this one cannot follow.
        public static let changedElsewhere = Code(value: .changedElsewhere)
        /// The vault file is older than one already seen or recorded in the audit log (a copied-back
        /// `vault.moat`).
        public static let rolledBack = Code(value: .rolledBack)
        /// A file-system call failed.
        public static let io = Code(value: .io)

        public var description: String { "\(value)" }
    }

    public let code: Code
    public let message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { message }

    /// The exit code a command ends with for this error: 64 for bad input on the command line, 65 for a
    /// damaged or unreadable file, 1 otherwise (its ``kind``'s).
    public var exitCode: Int32 { kind.exitCode }
}
